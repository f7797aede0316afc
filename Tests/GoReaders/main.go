// The readers the original builtins and the runtimes use, for the tests that
// compare the server's own with them: `tar` runs Go's archive/tar
// (TarReaderGoParity), `yaml` sigs.k8s.io/yaml's YAMLToJSON over go-yaml v2
// (YAMLGoParity), `unpack` containerd's, containers/storage's and Docker's
// layer unpacking (LayersUnpackParity),
// `case` the strings package's letter case (GoCaseParity), `json`
// encoding/json's reading of a text (JSONGoReading), `decompress`
// containerd's decompression of a layer (DecompressionGoParity), `platform`
// the image containerd resolves an index to for a platform (PlatformParity).
// Built outside modules, against Debian's golang-k8s-sigs-yaml-dev,
// golang-github-containerd-containerd-dev,
// golang-github-containers-storage-dev and golang-github-docker-docker-dev. Reads inputs from stdin, each as
// a 4-byte big-endian length and the bytes, and writes one JSON line per
// input.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"github.com/containerd/containerd/archive"
	"github.com/containerd/containerd/archive/compression"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	storagearchive "github.com/containers/storage/pkg/archive"
	"github.com/containers/storage/pkg/chrootarchive"
	"github.com/containers/storage/pkg/reexec"
	dockerarchive "github.com/docker/docker/pkg/archive"
	dockerchroot "github.com/docker/docker/pkg/chrootarchive"
	dockerreexec "github.com/docker/docker/pkg/reexec"
	"golang.org/x/sys/unix"
	"sigs.k8s.io/yaml"
)

// What Go's archive/tar reads of one archive: its entries until the end or
// an error, and that error.
type listing struct {
	Entries []entry `json:"entries"`
	Error   string  `json:"error,omitempty"`
}

// An entry: its name, type flag, size, link target, and the SHA-256 of what
// Go reads as its data.
type entry struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Size int64  `json:"size"`
	Link string `json:"link"`
	Data string `json:"data"`
}

func readTar(archive []byte) interface{} {
	result := listing{Entries: []entry{}}
	reader := tar.NewReader(bytes.NewReader(archive))
	for {
		header, err := reader.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			result.Error = err.Error()
			break
		}
		hash := sha256.New()
		// A sparse file can claim terabytes of holes, which Go reads back as
		// zeros: past 16 MiB the archive is left uncompared.
		copied, err := io.CopyN(hash, reader, 16<<20)
		if err == nil && copied == 16<<20 {
			result.Error = "uncompared: an entry over 16 MiB"
			break
		}
		if err != nil && err != io.EOF {
			result.Error = err.Error()
			break
		}
		result.Entries = append(result.Entries, entry{header.Name, string([]byte{header.Typeflag}), header.Size, header.Linkname, hex.EncodeToString(hash.Sum(nil))})
	}
	return result
}

// What sigs.k8s.io/yaml makes of one document: its JSON text, or its error.
type conversion struct {
	JSON  string `json:"json"`
	Error string `json:"error,omitempty"`
}

func convertYAML(text []byte) interface{} {
	converted, err := yaml.YAMLToJSON(text)
	if err != nil {
		return conversion{Error: err.Error()}
	}
	return conversion{JSON: string(converted)}
}

// What containerd makes of an image's layers: the wanted files (YAML and
// JSON files in the asked directories, read through symbolic links as a
// process in the container reads them) as an overlay snapshotter stacks
// the layers, each unpacked on its own; the same as one directory shows
// with every layer unpacked in it (the native snapshotter); and the error
// each met.
// Files are keyed by their names' bytes in hex: JSON text would turn
// bytes that are not UTF-8 into U+FFFD.
type unpacked struct {
	Overlay      map[string]string `json:"overlay"`
	OverlayError string            `json:"overlayError,omitempty"`
	Native       map[string]string `json:"native"`
	NativeError  string            `json:"nativeError,omitempty"`
	Same         bool              `json:"same"`
	// As containers/storage (CRI-O, Podman) unpacks each layer for its
	// overlay driver, in a chroot, stacked as overlayfs stacks them.
	Storage      map[string]string `json:"storage"`
	StorageError string            `json:"storageError,omitempty"`
	// As Docker's overlay2 graph driver unpacks each layer, in a chroot,
	// stacked as overlayfs stacks them.
	Docker      map[string]string `json:"docker"`
	DockerError string            `json:"dockerError,omitempty"`
}

// The input: a count and the asked directories, then a count and the
// layers, bottom first, each as a 4-byte big-endian length and its bytes.
func frames(input []byte) [][]byte {
	var result [][]byte
	for len(input) >= 4 {
		count := binary.BigEndian.Uint32(input)
		input = input[4:]
		for i := uint32(0); i < count && len(input) >= 4; i++ {
			length := binary.BigEndian.Uint32(input)
			result = append(result, input[4:4+length])
			input = input[4+length:]
		}
		result = append(result, nil)
	}
	return result
}

func unpack(input []byte) interface{} {
	parts := frames(input)
	var directories []string
	var layers [][]byte
	for i, part := range parts {
		if part == nil {
			layers = parts[i+1 : len(parts)-1]
			break
		}
		directories = append(directories, string(part))
	}
	temporary, err := os.MkdirTemp("", "ocirpc-unpack-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(temporary)
	result := unpacked{}
	merged := filepath.Join(temporary, "merged")
	native := filepath.Join(temporary, "native")
	storageMerged := filepath.Join(temporary, "storage")
	os.Mkdir(merged, 0o755)
	os.Mkdir(native, 0o755)
	os.Mkdir(storageMerged, 0o755)
	dockerMerged := filepath.Join(temporary, "docker")
	os.Mkdir(dockerMerged, 0o755)
	for i, layer := range layers {
		own := filepath.Join(temporary, "layer-"+string(rune('a'+i)))
		os.Mkdir(own, 0o755)
		if result.OverlayError == "" {
			if _, err := archive.Apply(context.Background(), own, bytes.NewReader(layer), archive.WithConvertWhiteout(archive.OverlayConvertWhiteout)); err != nil {
				result.OverlayError = err.Error()
			} else if err := stack(own, merged); err != nil {
				result.OverlayError = err.Error()
			}
		}
		if result.NativeError == "" {
			if _, err := archive.Apply(context.Background(), native, bytes.NewReader(layer)); err != nil {
				result.NativeError = err.Error()
			}
		}
		// Unpacked in its own directory by `untar`, then stacked on `merged`.
		unpackOwn := func(name string, merged string, untar func(string) error) string {
			own := filepath.Join(temporary, name+"-"+string(rune('a'+i)))
			os.Mkdir(own, 0o755)
			if err := untar(own); err != nil {
				return err.Error()
			} else if err := stack(own, merged); err != nil {
				return err.Error()
			}
			return ""
		}
		if result.StorageError == "" {
			result.StorageError = unpackOwn("storage", storageMerged, func(own string) error {
				options := &storagearchive.TarOptions{WhiteoutFormat: storagearchive.OverlayWhiteoutFormat}
				return chrootarchive.UntarUncompressed(bytes.NewReader(layer), own, options)
			})
		}
		if result.DockerError == "" {
			result.DockerError = unpackOwn("docker", dockerMerged, func(own string) error {
				options := &dockerarchive.TarOptions{WhiteoutFormat: dockerarchive.OverlayWhiteoutFormat}
				return dockerchroot.UntarUncompressed(bytes.NewReader(layer), own, options)
			})
		}
	}
	if result.DockerError == "" {
		result.Docker = wantedFiles(dockerMerged, directories)
	}
	if result.StorageError == "" {
		result.Storage = wantedFiles(storageMerged, directories)
	}
	if result.OverlayError == "" {
		result.Overlay = wantedFiles(merged, directories)
	}
	if result.NativeError == "" {
		result.Native = wantedFiles(native, directories)
	}
	result.Same = result.OverlayError == "" && result.NativeError == "" && tree(merged) == tree(native)
	return result
}

// A tree's names, kinds, links' targets and files' contents, as text.
func tree(root string) string {
	var text strings.Builder
	filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		relative, _ := filepath.Rel(root, path)
		text.WriteString(relative + " " + info.Mode().Type().String())
		if info.Mode()&os.ModeSymlink != 0 {
			link, _ := os.Readlink(path)
			text.WriteString(" -> " + link)
		} else if info.Mode().IsRegular() {
			data, _ := os.ReadFile(path)
			text.WriteString(" = " + string(data))
		}
		text.WriteString("\n")
		return nil
	})
	return text.String()
}

// Stacks one unpacked layer over the layers below it, as overlayfs shows
// them: a directory over a directory merges with it unless it is opaque
// (containerd marks it `trusted.overlay.opaque`), a whiteout (a character
// device 0/0) removes what was below, anything else replaces what was below
// and everything under it.
func stack(own, merged string) error {
	return filepath.Walk(own, func(path string, info os.FileInfo, err error) error {
		if err != nil || path == own {
			return err
		}
		relative, _ := filepath.Rel(own, path)
		target := filepath.Join(merged, relative)
		below, belowErr := os.Lstat(target)
		if info.IsDir() {
			opaque := make([]byte, 1)
			size, _ := unix.Lgetxattr(path, "trusted.overlay.opaque", opaque)
			if belowErr == nil && below.IsDir() && !(size == 1 && opaque[0] == 'y') {
				return nil
			}
			os.RemoveAll(target)
			return os.Mkdir(target, 0o755)
		}
		os.RemoveAll(target)
		switch {
		case info.Mode()&os.ModeCharDevice != 0 && info.Sys().(*syscall.Stat_t).Rdev == 0:
			return nil
		case info.Mode()&os.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case info.Mode().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		default:
			return unix.Mkfifo(target, 0o644)
		}
	})
}

// The YAML and JSON files in each directory asked for, by the name asked
// for, read as a process whose root is `root` reads them (symbolic links
// followed, never above the root).
func wantedFiles(root string, directories []string) map[string]string {
	files := map[string]string{}
	rootFD, err := unix.Open(root, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	if err != nil {
		panic(err)
	}
	defer unix.Close(rootFD)
	open := func(path string, flags uint64) (*os.File, error) {
		how := &unix.OpenHow{Flags: flags | unix.O_NONBLOCK, Resolve: unix.RESOLVE_IN_ROOT}
		fd, err := unix.Openat2(rootFD, path, how)
		// EAGAIN: a rename or a mount anywhere on the machine (another
		// test's, the chroots containers/storage unpacks in) while `..`
		// was resolved. Not an answer about the file: asked again.
		for tries := 0; err == unix.EAGAIN && tries < 10000; tries++ {
			fd, err = unix.Openat2(rootFD, path, how)
		}
		if err == unix.EAGAIN {
			panic("openat2 of " + path + " kept failing with EAGAIN")
		}
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), path), nil
	}
	for _, directory := range directories {
		listing, err := open(directory, unix.O_DIRECTORY|unix.O_RDONLY)
		if err != nil {
			continue
		}
		names, _ := listing.Readdirnames(-1)
		listing.Close()
		sort.Strings(names)
		for _, name := range names {
			// As the original builtin matches an extension.
			extension := filepath.Ext(name)
			if !strings.EqualFold(extension, ".yaml") && !strings.EqualFold(extension, ".yml") && !strings.EqualFold(extension, ".json") {
				continue
			}
			key := name
			if directory != "." {
				key = directory + "/" + name
			}
			path := key
			key = hex.EncodeToString([]byte(key))
			file, err := open(path, unix.O_RDONLY)
			if err != nil {
				continue
			}
			if info, err := file.Stat(); err == nil && info.Mode().IsRegular() {
				data, _ := io.ReadAll(file)
				files[key] = string(data)
			}
			file.Close()
		}
	}
	return files
}

// How Go reads one text's runes and their case: the runes (an invalid byte
// as U+FFFD, as encoding/json writes it), its strings.ToLower, and a key two
// texts share exactly when strings.EqualFold takes them for one (each rune
// replaced by the least rune of its unicode.SimpleFold orbit), all in hex;
// and the Unicode version of Go's tables.
type letterCase struct {
	Text    string `json:"text"`
	Lower   string `json:"lower"`
	Fold    string `json:"fold"`
	Unicode string `json:"unicode"`
}

func readCase(input []byte) interface{} {
	var text, fold []byte
	for _, r := range string(input) {
		text = utf8.AppendRune(text, r)
		least := r
		for other := unicode.SimpleFold(r); other != r; other = unicode.SimpleFold(other) {
			if other < least {
				least = other
			}
		}
		fold = utf8.AppendRune(fold, least)
	}
	return letterCase{hex.EncodeToString(text), hex.EncodeToString([]byte(strings.ToLower(string(input)))), hex.EncodeToString(fold), unicode.Version}
}

// What encoding/json makes of one text, as the original's parsed_blob and
// go-containerregistry's manifests read it: the value written again, or the
// error.
func readJSON(input []byte) interface{} {
	var value interface{}
	if err := json.Unmarshal(input, &value); err != nil {
		return conversion{Error: err.Error()}
	}
	text, err := json.Marshal(value)
	if err != nil {
		return conversion{Error: err.Error()}
	}
	return conversion{JSON: string(text)}
}

// What containerd's DecompressStream (the stream a layer is unpacked from,
// its compression told by its first bytes) reads of one input: its size
// and SHA-256, up to maxDecompressed bytes, and the error that ended it.
// Beside it, the compression containerd and containers/storage (CRI-O,
// Podman) take the stream for, by its first bytes.
type decompressed struct {
	Size       int64  `json:"size"`
	Data       string `json:"data"`
	Error      string `json:"error,omitempty"`
	Containerd string `json:"containerd"`
	Storage    string `json:"storage"`
}

const maxDecompressed = 64 << 20

// The compression containers/storage's pkg/archive takes a stream for: its
// table of magic numbers, each matched at the start.
func storageCompression(head []byte) string {
	for _, known := range []struct {
		name  string
		magic []byte
	}{
		{"bzip2", []byte{0x42, 0x5A, 0x68}},
		{"gzip", []byte{0x1F, 0x8B, 0x08}},
		{"xz", []byte{0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00}},
		{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd}},
	} {
		if bytes.HasPrefix(head, known.magic) {
			return known.name
		}
	}
	return "none"
}

func decompress(input []byte) interface{} {
	head := input
	if len(head) > 10 {
		head = head[:10]
	}
	detected := compression.DetectCompression(head)
	named := map[compression.Compression]string{compression.Uncompressed: "none", compression.Gzip: "gzip", compression.Zstd: "zstd"}[detected]
	reader, err := compression.DecompressStream(bytes.NewReader(input))
	if err != nil {
		return decompressed{Error: err.Error(), Containerd: named, Storage: storageCompression(head)}
	}
	defer reader.Close()
	hash := sha256.New()
	size, err := io.Copy(hash, io.LimitReader(reader, maxDecompressed+1))
	result := decompressed{Size: size, Data: hex.EncodeToString(hash.Sum(nil)), Containerd: named, Storage: storageCompression(head)}
	if err != nil {
		result.Error = err.Error()
	} else if size > maxDecompressed {
		result.Error = "over the limit"
	}
	return result
}

// Blobs by digest, as containerd's content store hands them out.
type memoryProvider map[digest.Digest][]byte

type memoryReader struct{ *bytes.Reader }

func (memoryReader) Close() error { return nil }

func (p memoryProvider) ReaderAt(_ context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	blob, found := p[desc.Digest]
	if !found {
		return nil, os.ErrNotExist
	}
	return memoryReader{bytes.NewReader(blob)}, nil
}

// Which entry of an index containerd runs for a platform: `images.Manifest`
// under `platforms.Only`, as containerd, Docker and Kubernetes on them
// pull for a node. The input is {"platform": "os/arch[/variant]",
// "entries": [platform object or null, ...]}; each entry is an image
// manifest whose config says linux/amd64 (what containerd reads for an
// entry without a platform) and whose annotation says its place.
type resolved struct {
	Chosen int    `json:"chosen"`
	Error  string `json:"error,omitempty"`
}

func resolvePlatform(input []byte) interface{} {
	var request struct {
		Platform string            `json:"platform"`
		Entries  []json.RawMessage `json:"entries"`
	}
	if err := json.Unmarshal(input, &request); err != nil {
		return resolved{Chosen: -1, Error: err.Error()}
	}
	wanted, err := platforms.Parse(request.Platform)
	if err != nil {
		return resolved{Chosen: -1, Error: err.Error()}
	}
	provider := memoryProvider{}
	put := func(blob []byte) (digest.Digest, int64) {
		d := digest.FromBytes(blob)
		provider[d] = blob
		return d, int64(len(blob))
	}
	configDigest, configSize := put([]byte(`{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":[]}}`))
	var entries []string
	for place, platform := range request.Entries {
		manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[],"annotations":{"place":"%d"}}`,
			ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig, configDigest, configSize, place)
		d, size := put([]byte(manifest))
		entry := fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d`, ocispec.MediaTypeImageManifest, d, size)
		if string(platform) != "" {
			entry += `,"platform":` + string(platform)
		}
		entries = append(entries, entry+"}")
	}
	index := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"manifests":[%s]}`, ocispec.MediaTypeImageIndex, strings.Join(entries, ","))
	indexDigest, indexSize := put([]byte(index))
	manifest, err := images.Manifest(context.Background(), provider,
		ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: indexDigest, Size: indexSize}, platforms.Only(wanted))
	if err != nil {
		return resolved{Chosen: -1, Error: err.Error()}
	}
	var place int
	fmt.Sscanf(manifest.Annotations["place"], "%d", &place)
	return resolved{Chosen: place}
}

func main() {
	// containers/storage and Docker unpack in a chroot, in this program
	// run again.
	if reexec.Init() || dockerreexec.Init() {
		return
	}
	// Go's gzip reader, not a pigz found on the machine.
	os.Setenv("CONTAINERD_DISABLE_PIGZ", "1")
	read := map[string]func([]byte) interface{}{"tar": readTar, "yaml": convertYAML, "unpack": unpack, "case": readCase, "json": readJSON, "decompress": decompress, "platform": resolvePlatform}[os.Args[1]]
	in := bufio.NewReader(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for {
		var length uint32
		if err := binary.Read(in, binary.BigEndian, &length); err != nil {
			return
		}
		input := make([]byte, length)
		if _, err := io.ReadFull(in, input); err != nil {
			return
		}
		out.Encode(read(input))
	}
}

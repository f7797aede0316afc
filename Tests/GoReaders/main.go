// The readers the original builtins and the runtimes use, for the tests that
// compare the server's own with them: `tar` runs Go's archive/tar
// (TarReaderGoParity), `yaml` sigs.k8s.io/yaml's YAMLToJSON over go-yaml v2
// (YAMLGoParity). Built outside modules, against Debian's
// golang-k8s-sigs-yaml-dev. Reads inputs from stdin, each as a 4-byte
// big-endian length and the bytes, and writes one JSON line per input.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"

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

func main() {
	read := map[string]func([]byte) interface{}{"tar": readTar, "yaml": convertYAML}[os.Args[1]]
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

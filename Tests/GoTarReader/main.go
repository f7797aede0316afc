// Go's archive/tar, for the tests that compare the server's tar reader with
// it (TarReaderGoParity). Reads archives from stdin, each as a 4-byte
// big-endian length and the bytes, and writes one JSON line per archive:
// each entry's name, type flag, size and the SHA-256 of what it reads as
// the entry's data, or the error that stopped it.
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
)

type entry struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Size int64  `json:"size"`
	Data string `json:"data"`
}

type listing struct {
	Entries []entry `json:"entries"`
	Error   string  `json:"error,omitempty"`
}

func main() {
	in := bufio.NewReader(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for {
		var length uint32
		if err := binary.Read(in, binary.BigEndian, &length); err != nil {
			return
		}
		archive := make([]byte, length)
		if _, err := io.ReadFull(in, archive); err != nil {
			return
		}
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
			// A sparse file can claim terabytes of holes, which Go reads
			// back as zeros: past 16 MiB the archive is left uncompared.
			copied, err := io.CopyN(hash, reader, 16<<20)
			if err == nil && copied == 16<<20 {
				result.Error = "uncompared: an entry over 16 MiB"
				break
			}
			if err != nil && err != io.EOF {
				result.Error = err.Error()
				break
			}
			result.Entries = append(result.Entries, entry{header.Name, string([]byte{header.Typeflag}), header.Size, hex.EncodeToString(hash.Sum(nil))})
		}
		out.Encode(result)
	}
}

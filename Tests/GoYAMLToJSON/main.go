// sigs.k8s.io/yaml's YAMLToJSON (over go-yaml v2), as the original builtins
// convert files, for the tests that compare the server's conversion with it
// (YAMLGoParity). Built outside modules, against Debian's
// golang-k8s-sigs-yaml-dev. Reads documents from stdin, each as a 4-byte
// big-endian length and the bytes, and writes one JSON line per document:
// the converted text, or the error.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"

	"sigs.k8s.io/yaml"
)

type result struct {
	JSON  string `json:"json"`
	Error string `json:"error,omitempty"`
}

func main() {
	in := bufio.NewReader(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for {
		var length uint32
		if err := binary.Read(in, binary.BigEndian, &length); err != nil {
			return
		}
		text := make([]byte, length)
		if _, err := io.ReadFull(in, text); err != nil {
			return
		}
		converted, err := yaml.YAMLToJSON(text)
		if err != nil {
			out.Encode(result{Error: err.Error()})
		} else {
			out.Encode(result{JSON: string(converted)})
		}
	}
}

package ocirpc

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

// Protocol plumbing the client drives itself, not methods for callers.
var plumbing = map[string]bool{
	"initialize": true, "shutdown": true, "exit": true, "rpc.discover": true,
	"$/cancelRequest": true, "$/progress": true,
}

// goName is the client method for a contract method: ec.oci.image_manifest
// -> ImageManifest, server.clearCache -> ClearCache.
func goName(method string) string {
	name := method[strings.LastIndex(method, ".")+1:]
	var b strings.Builder
	upper := true
	for _, r := range name {
		if r == '_' {
			upper = true
			continue
		}
		if upper {
			r = unicode.ToUpper(r)
			upper = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// clientMethods reads the package's source: each exported method of
// *Client and the names of its parameters.
func clientMethods(t *testing.T) map[string][]string {
	t.Helper()
	files, _ := filepath.Glob("*.go")
	methods := map[string][]string{}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range file.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || !fn.Name.IsExported() {
				continue
			}
			star, ok := fn.Recv.List[0].Type.(*ast.StarExpr)
			if !ok || star.X.(*ast.Ident).Name != "Client" {
				continue
			}
			var names []string
			for _, field := range fn.Type.Params.List {
				for _, name := range field.Names {
					names = append(names, name.Name)
				}
			}
			methods[fn.Name.Name] = names
		}
	}
	return methods
}

func TestEveryMethodAndParameterOfTheContractIsExposed(t *testing.T) {
	data, err := os.ReadFile("../../protocol/openrpc.json")
	if err != nil {
		t.Fatal(err)
	}
	var contract struct {
		Methods []struct {
			Name   string `json:"name"`
			Params []struct {
				Name string `json:"name"`
			} `json:"params"`
		} `json:"methods"`
	}
	if err := json.Unmarshal(data, &contract); err != nil {
		t.Fatal(err)
	}
	methods := clientMethods(t)
	checked := 0
	for _, method := range contract.Methods {
		if plumbing[method.Name] {
			continue
		}
		checked++
		params, ok := methods[goName(method.Name)]
		if !ok {
			t.Errorf("%s: no Client.%s", method.Name, goName(method.Name))
			continue
		}
		for _, param := range method.Params {
			if param.Name == "partialResultToken" {
				if _, ok := methods["Stream"+goName(method.Name)]; !ok {
					t.Errorf("%s: no Client.Stream%s for partial results", method.Name, goName(method.Name))
				}
				continue
			}
			found := false
			for _, name := range params {
				found = found || name == param.Name
			}
			if !found {
				t.Errorf("%s: Client.%s has no parameter %q (has %v)", method.Name, goName(method.Name), param.Name, params)
			}
		}
	}
	if checked < 12 {
		t.Fatalf("only %d methods checked", checked)
	}
}

func TestEveryContractErrorCodeHasAConstant(t *testing.T) {
	data, _ := os.ReadFile("../../protocol/openrpc.json")
	var contract struct {
		Components struct {
			Errors map[string]struct {
				Code int `json:"code"`
			} `json:"errors"`
		} `json:"components"`
	}
	if err := json.Unmarshal(data, &contract); err != nil {
		t.Fatal(err)
	}
	constants := map[int]bool{CodeParseError: true, CodeInvalidRequest: true, CodeMethodNotFound: true,
		CodeInvalidParams: true, CodeInternalError: true, CodeRequestCancelled: true, CodeNotFound: true,
		CodeAccessDenied: true, CodeIntegrityFailure: true, CodeRegistryUnavailable: true,
		CodeLimitExceeded: true, CodeUnsupportedContent: true}
	for name, e := range contract.Components.Errors {
		if !constants[e.Code] {
			t.Errorf("%s (%d) has no Code constant", name, e.Code)
		}
		if e.Code > -32100 && e.Code < -32000 || e.Code == CodeRequestCancelled || e.Code == CodeInvalidParams {
			if _, ok := sentinels[e.Code]; !ok {
				t.Errorf("%s (%d) has no sentinel error", name, e.Code)
			}
		}
	}
	if len(contract.Components.Errors) != len(constants) {
		t.Errorf("the contract has %d codes, the client %d", len(contract.Components.Errors), len(constants))
	}
}

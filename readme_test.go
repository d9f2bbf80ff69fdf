package main_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The README's library section is complete as written: its Go example
// compiles on its own, as printed, and it names every exported function
// and Service method of models.
func TestREADMELibrary(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "## Using the package from an application")
	end := strings.Index(text, "### Applications not written in Go")
	if start < 0 || end < start {
		t.Fatal("README has no library section")
	}
	section := text[start:end]
	example := regexp.MustCompile("(?s)```go\n(.*?)```").FindStringSubmatch(section)
	if example == nil {
		t.Fatal("the library section has no Go example")
	}

	// Compile the example as a package of this module, through an overlay,
	// so that nothing is written into the tree.
	root, _ := os.Getwd()
	dir := t.TempDir()
	file := filepath.Join(dir, "example.go")
	if err := os.WriteFile(file, []byte(example[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{
		filepath.Join(root, "internal", "readmeexample", "example.go"): file,
	}})
	overlayFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-overlay", overlayFile, "-o", os.DevNull, "./internal/readmeexample")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("the README's library example does not compile as printed: %v\n%s", err, out)
	}

	// Every exported function and Service method is named.
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, "models", func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			for _, decl := range f.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || !fn.Name.IsExported() {
					continue
				}
				if fn.Recv != nil {
					star, ok := fn.Recv.List[0].Type.(*ast.StarExpr)
					if !ok || star.X.(*ast.Ident).Name != "Service" {
						continue // methods of other types (Key.ID, …) are not operations
					}
				}
				if !strings.Contains(section, "`"+fn.Name.Name+"`") {
					t.Errorf("the README's library section does not name models.%s", fn.Name.Name)
				}
			}
		}
	}
}

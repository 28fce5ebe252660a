package sqlstore_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/medpay/medpay/sqlstore"
)

// TestConformanceCoversEveryMethod keeps the conformance suite complete: every exported method of
// Store and DB is called by a test of this package, which runs on every engine.
func TestConformanceCoversEveryMethod(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	var src strings.Builder
	for _, f := range files {
		if f == "conformance_coverage_test.go" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src.Write(data)
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[*sqlstore.Store](), reflect.TypeFor[*sqlstore.DB]()} {
		for i := 0; i < typ.NumMethod(); i++ {
			name := typ.Method(i).Name
			if !strings.Contains(src.String(), "."+name+"(") {
				t.Errorf("%s.%s has no conformance test", typ.Elem().Name(), name)
			}
		}
	}
}

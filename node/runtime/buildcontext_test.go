package runtime_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dropmesh/dropmesh/node/runtime"
)

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// entry is one tar entry for the table tests.
type entry struct {
	name, body, link string
	typ              byte
	size             int64 // header size when it must differ from len(body)
}

func file(name, body string) entry        { return entry{name: name, body: body, typ: tar.TypeReg} }
func dir(name string) entry               { return entry{name: name, typ: tar.TypeDir} }
func symlink(name, target string) entry   { return entry{name: name, link: target, typ: tar.TypeSymlink} }
func hardlink(name, target string) entry  { return entry{name: name, link: target, typ: tar.TypeLink} }
func special(name string, typ byte) entry { return entry{name: name, typ: typ} }

func tarEntries(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, ModTime: time.Unix(1700000000, 0)}
		if e.typ == tar.TypeXGlobalHeader {
			h = &tar.Header{Typeflag: e.typ, PAXRecords: map[string]string{"comment": "made by a test"}}
		}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.body != "" {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gzipped(t testing.TB, data []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

const dockerfile = "FROM scratch\nCOPY . /\n"

func TestValidateBuildContextRefusals(t *testing.T) {
	df := file("Dockerfile", dockerfile)
	for _, tc := range []struct {
		name    string
		entries []entry
		max     int64
		want    string // in the error
	}{
		{"dot-dot path", []entry{df, file("../x", "x")}, 0, `"../x"`},
		{"dot-dot inside path", []entry{df, file("a/../../x", "x")}, 0, `"a/../../x"`},
		{"absolute path", []entry{df, file("/abs", "x")}, 0, `"/abs"`},
		{"symlink to /etc/passwd", []entry{df, symlink("passwd", "/etc/passwd")}, 0, `"passwd"`},
		{"symlink a -> ../../x", []entry{df, symlink("a", "../../x")}, 0, `"a"`},
		{"symlink in dir escaping", []entry{df, dir("d/"), symlink("d/l", "../../x")}, 0, `"d/l"`},
		{"symlink chain escaping", []entry{df, dir("d/"), symlink("d/up", ".."), symlink("d/l2", "up/..")}, 0, `"d/l2"`},
		{"symlink chain, link defined last", []entry{df, symlink("l2", "l1/x"), symlink("l1", "/etc")}, 0, `"l1"`},
		{"symlink loop", []entry{df, symlink("a", "b/x"), symlink("b", "a/y")}, 0, "loop"},
		{"entry under a symlink", []entry{df, symlink("l", "d"), dir("d/"), file("l/x", "x")}, 0, `"l/x"`},
		{"hardlink out", []entry{df, hardlink("h", "../etc/shadow")}, 0, `"h"`},
		{"hardlink absolute", []entry{df, hardlink("h", "/etc/shadow")}, 0, `"h"`},
		{"hardlink to nothing", []entry{df, hardlink("h", "nothing")}, 0, `"h"`},
		{"char device", []entry{df, special("null", tar.TypeChar)}, 0, "device"},
		{"block device", []entry{df, special("sda", tar.TypeBlock)}, 0, "device"},
		{"fifo", []entry{df, special("pipe", tar.TypeFifo)}, 0, "FIFO"},
		{"oversize file", []entry{df, file("big", strings.Repeat("x", 4000))}, 3000, `"big"`},
		{"oversize total", []entry{df, file("a", strings.Repeat("x", 1000)), file("b", strings.Repeat("x", 1000)), file("c", strings.Repeat("x", 1000))}, 3500, "limit"},
		{"missing Dockerfile", []entry{file("main.go", "package main")}, 0, "no Dockerfile"},
		{"Dockerfile is a dir", []entry{dir("Dockerfile/")}, 0, "regular file"},
		{"Dockerfile is a symlink", []entry{file("real", dockerfile), symlink("Dockerfile", "real")}, 0, "regular file"},
		{"duplicate file", []entry{df, file("a", "1"), file("a", "2")}, 0, "twice"},
		{"file then dir of same name", []entry{df, file("a", "1"), file("a/b", "2")}, 0, "not a directory"},
		{"empty name", []entry{df, file("", "x")}, 0, "empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			max := tc.max
			if max == 0 {
				max = 1 << 20
			}
			info, data, err := runtime.ValidateBuildContext(bytes.NewReader(tarEntries(t, tc.entries...)), max)
			if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want ErrInvalid mentioning %s", err, tc.want)
			}
			if data != nil || info.Digest != "" {
				t.Fatalf("a refused context returned data")
			}
		})
	}
}

func TestValidateBuildContextAccepts(t *testing.T) {
	entries := []entry{
		dir("./"),
		file("./Dockerfile", dockerfile),
		dir("./src/"),
		file("./src/main.go", "package main"),
		symlink("./src/link", "main.go"),
		symlink("./src/up", "../Dockerfile"),
		symlink("./dirlink", "src"),
		symlink("./dangling", "not/there"),
		hardlink("./hard", "src/main.go"),
		{name: "pax_global_header", typ: tar.TypeXGlobalHeader},
		dir("./src/"), // a repeated directory is harmless
	}
	raw := tarEntries(t, entries...)
	info, data, err := runtime.ValidateBuildContext(bytes.NewReader(raw), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if info.Files != 3 || info.Entries != 8 || info.Size != int64(len(data)) || !strings.HasPrefix(info.Digest, "sha256:") || info.Dockerfile != "Dockerfile" {
		t.Fatalf("info = %+v", info)
	}
	// The same files, packed differently (no ./ prefix, gzip, other
	// owners), give the same digest.
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := &tar.Header{Name: strings.TrimPrefix(e.name, "./"), Linkname: strings.TrimPrefix(e.link, "./"), Typeflag: e.typ,
			Mode: 0o100644, ModTime: time.Unix(1700000000, 999), Uid: 1000, Gid: 1000, Uname: "dev", Gname: "dev"}
		if h.Name == "" || e.typ == tar.TypeXGlobalHeader {
			continue
		}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	info2, data2, err := runtime.ValidateBuildContext(bytes.NewReader(gzipped(t, b.Bytes())), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if info2.Digest != info.Digest || !bytes.Equal(data, data2) {
		t.Fatalf("repacked context digest %s != %s", info2.Digest, info.Digest)
	}
	// Normalizing is idempotent.
	info3, data3, err := runtime.ValidateBuildContext(bytes.NewReader(data), 1<<20)
	if err != nil || info3.Digest != info.Digest || !bytes.Equal(data3, data) {
		t.Fatalf("re-validating the normalized tar = %+v, %v", info3, err)
	}
	// The normalized tar has clean names and no owners.
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if strings.HasPrefix(h.Name, "./") || h.Uid != 0 || h.Uname != "" {
			t.Fatalf("normalized header %+v", h)
		}
	}
}

func TestValidateBuildContextOtherInput(t *testing.T) {
	df := file("Dockerfile", dockerfile)
	if _, _, err := runtime.ValidateBuildContextFor(bytes.NewReader(tarEntries(t, file("build/prod.Dockerfile", dockerfile))), 1<<20, "build/prod.Dockerfile"); err != nil {
		t.Fatalf("custom Dockerfile name: %v", err)
	}
	if _, _, err := runtime.ValidateBuildContextFor(bytes.NewReader(tarEntries(t, df)), 1<<20, "../Dockerfile"); !errors.Is(err, runtime.ErrInvalid) {
		t.Fatalf("Dockerfile name outside the context: %v", err)
	}
	// An upload is checked without a Dockerfile (the spec names it later);
	// the same context is then checked again for the spec's one.
	sub := tarEntries(t, file("sub/Dockerfile", dockerfile), file("app.txt", "x"))
	if info, _, err := runtime.ValidateBuildContextFor(bytes.NewReader(sub), 1<<20, ""); err != nil || info.Dockerfile != "" || info.Files != 2 {
		t.Fatalf("no Dockerfile required: %+v %v", info, err)
	}
	if _, _, err := runtime.ValidateBuildContextFor(bytes.NewReader(sub), 1<<20, "sub/Dockerfile"); err != nil {
		t.Fatalf("sub/Dockerfile: %v", err)
	}
	if _, _, err := runtime.ValidateBuildContextFor(bytes.NewReader(sub), 1<<20, "Dockerfile"); !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "no Dockerfile") {
		t.Fatalf("root Dockerfile missing: %v", err)
	}
	for name, input := range map[string][]byte{
		"empty":   nil,
		"garbage": []byte("this is not a tar archive, not at all, and it is long enough to fill a header block? no"),
		"bzip2":   []byte("BZh91AY&SY"),
		"xz":      {0xfd, '7', 'z', 'X', 'Z', 0, 0},
		"zstd":    {0x28, 0xb5, 0x2f, 0xfd, 0},
		"bad gz":  {0x1f, 0x8b, 0, 0},
		"gz bomb": gzipped(t, tarEntries(t, df, file("zeros", strings.Repeat("\x00", 1<<20)))),
	} {
		if _, _, err := runtime.ValidateBuildContext(bytes.NewReader(input), 64<<10); !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, _, err := runtime.ValidateBuildContext(bytes.NewReader(tarEntries(t, df)), 0); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("zero limit accepted")
	}
	// A context exactly at the limit passes; one byte less refuses it.
	raw := tarEntries(t, df)
	if _, _, err := runtime.ValidateBuildContext(bytes.NewReader(raw), int64(len(raw))); err != nil {
		t.Errorf("context exactly at the limit: %v", err)
	}
	if _, _, err := runtime.ValidateBuildContext(bytes.NewReader(raw), int64(len(raw))-1); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("context one byte over the limit: %v", err)
	}
}

func FuzzValidateBuildContext(f *testing.F) {
	df := file("Dockerfile", dockerfile)
	f.Add(tarEntries(f, df))
	f.Add(tarEntries(f, df, dir("d/"), symlink("d/l", "../Dockerfile"), hardlink("h", "Dockerfile")))
	f.Add(gzipped(f, tarEntries(f, df, file("a", "b"))))
	f.Fuzz(func(t *testing.T, in []byte) {
		info, data, err := runtime.ValidateBuildContext(bytes.NewReader(in), 1<<16)
		if err != nil {
			if !errors.Is(err, runtime.ErrInvalid) {
				t.Fatalf("refusal without ErrInvalid: %v", err)
			}
			return
		}
		// What passes is stable: validating the normalized tar again gives
		// the same bytes, and every entry in it obeys the rules.
		info2, data2, err := runtime.ValidateBuildContext(bytes.NewReader(data), 1<<17)
		if err != nil || info2.Digest != info.Digest || !bytes.Equal(data, data2) {
			t.Fatalf("normalized tar does not re-validate identically: %v", err)
		}
		tr := tar.NewReader(bytes.NewReader(data))
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if runtime.CheckContextPath(h.Name) != nil || strings.HasPrefix(h.Linkname, "/") ||
				(h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeDir && h.Typeflag != tar.TypeSymlink && h.Typeflag != tar.TypeLink) {
				t.Fatalf("accepted entry %+v", h)
			}
		}
	})
}

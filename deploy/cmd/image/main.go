// Command image writes the wasmserve container image as an OCI tarball
// (docker load / podman load / crane push), with the layout of
// deploy/Dockerfile, without a container engine:
//
//	go run ./cmd/image -binary ../bin/wasmserve-static -module ../guests/examples/hello-go/hello.wasm -ini app.ini -out ../bin/wasmserve-image.tar
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// User is the non-root user the image runs as.
const User = "65532:65532"

func main() {
	binary := flag.String("binary", "", "static wasmserve binary")
	module := flag.String("module", "", "app module")
	ini := flag.String("ini", "", "app INI")
	out := flag.String("out", "wasmserve-image.tar", "output tarball")
	tag := flag.String("tag", "wasmserve:latest", "image reference in the tarball")
	flag.Parse()
	if err := Build(*binary, *module, *ini, *out, *tag); err != nil {
		log.Fatal(err)
	}
	fmt.Println("wrote", *out)
}

// Build writes the image tarball.
func Build(binary, module, ini, out, tag string) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(0, 0)
	dir := func(name string, mode int64, uid int) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: uid, Gid: uid, ModTime: mtime})
	}
	file := func(name, src string, mode int64) error {
		b, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("image: %w", err)
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(b)), ModTime: mtime}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	}
	for _, step := range []error{
		dir("usr/", 0o755, 0), dir("usr/local/", 0o755, 0), dir("usr/local/bin/", 0o755, 0),
		file("usr/local/bin/wasmserve", binary, 0o755),
		dir("tmp/", 0o1777, 65532),
		dir("app/", 0o755, 0),
		file("app/hello.wasm", module, 0o644),
		file("app/app.ini", ini, 0o644),
	} {
		if step != nil {
			return step
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		return fmt.Errorf("image: layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg := cf.Config
	cfg.Entrypoint = []string{"/usr/local/bin/wasmserve"}
	cfg.Cmd = []string{"/app/app.ini"}
	cfg.User = User
	cfg.WorkingDir = "/app"
	cfg.ExposedPorts = map[string]struct{}{"9090/tcp": {}, "6060/tcp": {}}
	cfg.Env = []string{"PATH=/usr/local/bin"}
	if img, err = mutate.Config(img, cfg); err != nil {
		return err
	}
	cf2, _ := img.ConfigFile()
	cf2.OS, cf2.Architecture = "linux", runtime.GOARCH
	if img, err = mutate.ConfigFile(img, cf2); err != nil {
		return err
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	var _ v1.Image = img
	return tarball.WriteToFile(out, ref, img)
}

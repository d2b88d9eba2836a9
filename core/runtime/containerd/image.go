package containerd

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// ImageName is the image every guest container runs from: a skeleton root
// (mount points, the merged-/usr symlinks, passwd) into which the host's
// /usr is bound read-only. See docs/architecture.md for why not a full
// image with its own QEMU.
const ImageName = "loco.local/qemu-host:1"

// skeleton is the image as an OCI image layout archive, the form client
// Import reads. It is built byte for byte the same every time, so its digest
// names this layout and a second import is a no-op.
func skeleton() (archive []byte, manifestDigest string, err error) {
	layer, err := skeletonLayer()
	if err != nil {
		return nil, "", err
	}
	layerDigest := digest(layer)
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
	})
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": len(config)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layerDigest, "size": len(layer)}},
	})
	manifestDigest = digest(manifest)
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []any{map[string]any{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifestDigest, "size": len(manifest),
			"platform":    map[string]string{"architecture": "amd64", "os": "linux"},
			"annotations": map[string]string{"io.containerd.image.name": ImageName, "org.opencontainers.image.ref.name": "1"},
		}},
	})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{blobPath(layerDigest), layer},
		{blobPath(digest(config)), config},
		{blobPath(manifestDigest), manifest},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
			return nil, "", err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), manifestDigest, nil
}

// skeletonLayer is the root filesystem: Debian 12 has merged /usr, so /bin,
// /sbin, /lib and /lib64 are symlinks into the /usr bound from the host.
func skeletonLayer() ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	for _, d := range []struct {
		name string
		mode int64
	}{{"dev", 0o755}, {"etc", 0o755}, {"proc", 0o555}, {"root", 0o700}, {"run", 0o755}, {"sys", 0o555},
		{"tmp", 0o1777}, {"usr", 0o755}, {"var", 0o755}, {"var/tmp", 0o1777}} {
		if err := tw.WriteHeader(&tar.Header{Name: d.name + "/", Mode: d.mode, ModTime: epoch, Typeflag: tar.TypeDir}); err != nil {
			return nil, err
		}
	}
	for _, l := range []string{"bin", "sbin", "lib", "lib64"} {
		if err := tw.WriteHeader(&tar.Header{Name: l, Linkname: "usr/" + l, Mode: 0o777, ModTime: epoch, Typeflag: tar.TypeSymlink}); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct{ name, data string }{
		{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"},
		{"etc/group", "root:x:0:\n"},
		{"etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files\n"},
		{"etc/hosts", "127.0.0.1 localhost\n"},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(f.data)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("building the image layer: %w", err)
	}
	return buf.Bytes(), nil
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func blobPath(d string) string { return "blobs/sha256/" + d[len("sha256:"):] }

package image

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// ReadImage returns the image called name in the OCI layout at dir.
func ReadImage(dir, name string) (v1.Image, error) {
	lp, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	for _, d := range im.Manifests {
		if d.Annotations[RefAnnotation] == name {
			img, err := lp.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("OCI layout %s: image %s: %w", dir, name, err)
			}
			return img, nil
		}
	}
	return nil, fmt.Errorf("OCI layout %s: no image named %q", dir, name)
}

// Unpack writes the image's flattened file system (its layers in order,
// whiteouts applied by mutate.Extract) into dir, with owners and modes,
// as a runtime would before starting it; dir must be new or empty. Device
// nodes are skipped (a runtime provides /dev), and a name or link leading
// out of dir is refused (os.Root).
func Unpack(img v1.Image, dir string) error {
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("unpack: %s is not empty", dir)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	if err := untar(rc, dir); err != nil {
		return fmt.Errorf("unpack into %s: %w", dir, err)
	}
	return nil
}

func untar(r io.Reader, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// Every write goes through an os.Root: a name, or a symbolic or hard
	// link an earlier entry made, that would lead out of dir is refused by
	// the kernel-backed walk rather than by string checks, which a
	// symlinked parent ("a -> /etc", then "a/x") would pass.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	type dirMode struct {
		name string
		mode os.FileMode
	}
	var dirs []dirMode
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("%q leaves the root", h.Name)
		}
		if name == "." {
			continue
		}
		mode := os.FileMode(h.Mode).Perm()
		if h.Mode&0o4000 != 0 {
			mode |= os.ModeSetuid
		}
		if h.Mode&0o2000 != 0 {
			mode |= os.ModeSetgid
		}
		if h.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return err
			}
			dirs = append(dirs, dirMode{name, mode})
		case tar.TypeReg:
			f, err := root.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		case tar.TypeSymlink:
			_ = root.Remove(name)
			if err := root.Symlink(h.Linkname, name); err != nil {
				return err
			}
		case tar.TypeLink:
			_ = root.Remove(name)
			if err := root.Link(filepath.Clean(h.Linkname), name); err != nil {
				return fmt.Errorf("hard link %q -> %q: %w", h.Name, h.Linkname, err)
			}
		default:
			continue // no devices in the image; the runtime provides /dev
		}
		if err := root.Lchown(name, h.Uid, h.Gid); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeLink {
			if err := root.Chmod(name, mode); err != nil {
				return err
			}
		}
	}
	for _, d := range dirs {
		if err := root.Chmod(d.name, d.mode); err != nil {
			return err
		}
	}
	return nil
}

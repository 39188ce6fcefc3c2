package image

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// RefAnnotation names an image in an OCI layout's index, as skopeo and
// podman read it (oci:DIR:NAME).
const RefAnnotation = "org.opencontainers.image.ref.name"

// builderVersion is part of every cache key: a change to how this file
// makes a root filesystem must not reuse an old one.
const builderVersion = "rpacloud-image/1"

// defaultPath is the PATH of Debian's official images' configuration.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// slimExcludes are the dpkg path filters of Debian's -slim images
// (debuerreotype's --slimify), so documentation and translations are not
// installed by the RUN instructions either. force-unsafe-io is what the
// official images set too (docker-apt-speedup).
var slimExcludes = []string{
	"path-exclude=/usr/share/doc/*",
	"path-include=/usr/share/doc/*/copyright",
	"path-exclude=/usr/share/info/*",
	"path-exclude=/usr/share/linda/*",
	"path-exclude=/usr/share/lintian/overrides/*",
	"path-exclude=/usr/share/locale/*",
	"path-exclude=/usr/share/man/*",
	"path-exclude=/usr/share/groff/*",
}

// Options say what to build and where.
type Options struct {
	Containerfile string   // path of the Containerfile
	Context       string   // build context (the repository root)
	Targets       []string // stages to write as images, each under its name
	Out           string   // OCI image layout directory to create; must not exist
	Cache         string   // cache directory (root filesystems by the hash of their inputs)
	Log           io.Writer
	Mmdebstrap    string    // default "mmdebstrap"
	Go            string    // default "go"
	Created       time.Time // the images' creation time; zero means the Unix epoch, for reproducible digests
	// Now is the clock of the root filesystem cache's weekly key; nil:
	// time.Now.
	Now func() time.Time
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Result is one image written.
type Result struct {
	Target string
	Digest v1.Hash
}

type builder struct {
	o      Options
	f      *File
	tmp    string
	goOut  map[*Stage]map[string]string // build stage -> image path -> host file
	images map[*Stage]v1.Image
	cfgs   map[*Stage]*v1.Config
	hist   map[*Stage][]v1.History
	used   map[string]bool // root filesystem cache keys this build uses: never pruned by it
}

// Build writes the targets as images into a new OCI layout at o.Out. The
// layout is made beside it and renamed into place: a failed build leaves
// nothing at o.Out.
func Build(ctx context.Context, o Options) ([]Result, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Mmdebstrap == "" {
		o.Mmdebstrap = "mmdebstrap"
	}
	if o.Go == "" {
		o.Go = "go"
	}
	if len(o.Targets) == 0 {
		return nil, errors.New("image build: no targets")
	}
	if _, err := os.Stat(o.Out); err == nil {
		return nil, fmt.Errorf("image build: %s exists; remove it first", o.Out)
	}
	src, err := os.ReadFile(o.Containerfile)
	if err != nil {
		return nil, fmt.Errorf("image build: %w", err)
	}
	f, err := Parse(o.Containerfile, src)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Cache, 0o755); err != nil {
		return nil, fmt.Errorf("image cache: %w", err)
	}
	tmp, err := os.MkdirTemp(o.Cache, "build-")
	if err != nil {
		return nil, fmt.Errorf("image build: %w", err)
	}
	defer os.RemoveAll(tmp)
	b := &builder{o: o, f: f, tmp: tmp, goOut: map[*Stage]map[string]string{},
		images: map[*Stage]v1.Image{}, cfgs: map[*Stage]*v1.Config{}, hist: map[*Stage][]v1.History{}}

	staging := o.Out + ".tmp" + strconv.Itoa(os.Getpid())
	_ = os.RemoveAll(staging)
	lp, err := layout.Write(staging, empty.Index)
	if err != nil {
		return nil, fmt.Errorf("image layout %s: %w", staging, err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(staging)
		}
	}()
	var res []Result
	for _, t := range o.Targets {
		st := f.Stage(t)
		if st == nil {
			return nil, fmt.Errorf("%s: no stage %q", f.Name, t)
		}
		if st.Kind == stageGo {
			return nil, fmt.Errorf("%s:%d: stage %q is a build stage, not an image", f.Name, st.Line, t)
		}
		img, err := b.image(ctx, st)
		if err != nil {
			return nil, err
		}
		if err := b.linkCachedBlobs(img, staging); err != nil {
			return nil, err
		}
		if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{RefAnnotation: t})); err != nil {
			return nil, fmt.Errorf("write image %s: %w", t, err)
		}
		d, err := img.Digest()
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(o.Log, "image %s: %s\n", t, d)
		res = append(res, Result{Target: t, Digest: d})
	}
	if err := os.Rename(staging, o.Out); err != nil {
		return nil, fmt.Errorf("image build: %w", err)
	}
	ok = true
	return res, nil
}

// Warm builds the root filesystems the targets need into the cache, and
// their binaries into Go's build cache, and writes no image: .ci/services.sh runs it before the tests, so that the
// image test's first run on a new machine does not spend its time budget
// in mmdebstrap.
func Warm(ctx context.Context, o Options) error {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Mmdebstrap == "" {
		o.Mmdebstrap = "mmdebstrap"
	}
	src, err := os.ReadFile(o.Containerfile)
	if err != nil {
		return fmt.Errorf("image warm: %w", err)
	}
	f, err := Parse(o.Containerfile, src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.Cache, 0o755); err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	tmp, err := os.MkdirTemp(o.Cache, "build-")
	if err != nil {
		return fmt.Errorf("image warm: %w", err)
	}
	defer os.RemoveAll(tmp)
	if o.Go == "" {
		o.Go = "go"
	}
	b := &builder{o: o, f: f, tmp: tmp, goOut: map[*Stage]map[string]string{},
		images: map[*Stage]v1.Image{}, cfgs: map[*Stage]*v1.Config{}, hist: map[*Stage][]v1.History{}}
	done := map[*Stage]bool{}
	for _, t := range o.Targets {
		st := f.Stage(t)
		if st == nil {
			return fmt.Errorf("%s: no stage %q", f.Name, t)
		}
		for ; st != nil; st = st.Parent {
			if done[st] {
				break
			}
			done[st] = true
			// The build stages' go build too: the binary is then in Go's
			// build cache, and the test's build of it only links.
			for _, in := range st.Insts {
				if from := in.Flags["from"]; in.Cmd == "COPY" && from != "" {
					if bs := f.Stage(from); bs != nil && bs.Kind == stageGo {
						if _, err := b.goBuild(ctx, bs); err != nil {
							return err
						}
					}
				}
			}
			if st.Kind == stageDebian {
				if _, _, _, err := b.debian(ctx, st); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (b *builder) created() time.Time {
	if b.o.Created.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return b.o.Created.UTC()
}

// image makes a stage's image: a debian stage's from its cached root
// filesystem, a derived stage's from its parent's with its COPY layers.
func (b *builder) image(ctx context.Context, st *Stage) (v1.Image, error) {
	if img, ok := b.images[st]; ok {
		return img, nil
	}
	var (
		img  v1.Image
		cfg  *v1.Config
		hist []v1.History
		err  error
	)
	switch st.Kind {
	case stageDebian:
		img, cfg, hist, err = b.debian(ctx, st)
	case stageChild:
		img, cfg, hist, err = b.child(ctx, st)
	default:
		err = fmt.Errorf("%s:%d: stage %s cannot be an image", b.f.Name, st.Line, st.Name)
	}
	if err != nil {
		return nil, err
	}
	// The configuration and history are set last, on the finished layers.
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = runtime.GOARCH, "linux"
	cf.Created = v1.Time{Time: b.created()}
	cf.Config = *cfg
	cf.History = hist
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	b.images[st], b.cfgs[st], b.hist[st] = img, cfg, hist
	return img, nil
}

// setEnv sets or replaces KEY in a config's Env.
func setEnv(env []string, k, v string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, k+"=") {
			out = append(out, e)
		}
	}
	return append(out, k+"="+v)
}

func (b *builder) debian(ctx context.Context, st *Stage) (v1.Image, *v1.Config, []v1.History, error) {
	cfg := &v1.Config{Env: []string{defaultPath}}
	var runs []string
	created := []string{fmt.Sprintf("FROM %s (mmdebstrap --variant=minbase %s)", st.From, st.Suite)}
	labels := map[string]string{}
	for _, in := range st.Insts {
		switch in.Cmd {
		case "ENV", "LABEL":
			kv, err := keyValues(b.f.Name, in)
			if err != nil {
				return nil, nil, nil, err
			}
			for _, p := range kv {
				if in.Cmd == "ENV" {
					cfg.Env = setEnv(cfg.Env, p[0], p[1])
				} else {
					labels[p[0]] = p[1]
				}
			}
		case "RUN":
			// Run with the ENV set so far, as an engine does.
			var sc strings.Builder
			for _, e := range cfg.Env {
				k, v, _ := strings.Cut(e, "=")
				fmt.Fprintf(&sc, "export %s='%s'\n", k, v)
			}
			sc.WriteString(in.Rest)
			sc.WriteByte('\n')
			runs = append(runs, sc.String())
			created = append(created, "RUN /bin/sh -c "+in.Rest)
		}
	}
	if len(labels) > 0 {
		cfg.Labels = labels
	}
	layer, err := b.rootfs(ctx, st, runs)
	if err != nil {
		return nil, nil, nil, err
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, MediaType: types.OCILayer})
	if err != nil {
		return nil, nil, nil, err
	}
	hist := []v1.History{{Created: v1.Time{Time: b.created()}, CreatedBy: strings.Join(created, " && "),
		Comment: "rpacloud-image: the base and its RUN instructions as one layer"}}
	return img, cfg, hist, nil
}

// mmdebstrapVersion is part of the cache key.
func (b *builder) mmdebstrapVersion(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, b.o.Mmdebstrap, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w (install Debian's mmdebstrap package)", b.o.Mmdebstrap, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// rootfs returns the debian stage's root filesystem as one layer, from the
// cache when its inputs (suite, slimness, RUN scripts, architecture,
// mmdebstrap's version, this builder's version) were built before in the
// same ISO week: the packages come from the Debian archive of the day, so a
// weekly key picks up security updates (Chromium's above all) without
// rebuilding at every run. Older entries are removed when a new one is
// cached, so the cache holds one root filesystem per input, not one a week.
func (b *builder) rootfs(ctx context.Context, st *Stage, runs []string) (v1.Layer, error) {
	ver, err := b.mmdebstrapVersion(ctx)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	year, week := b.o.now().ISOWeek()
	fmt.Fprintf(h, "%s\n%s\n%s\nslim=%v\narch=%s\nweek=%d-%d\n", builderVersion, ver, st.Suite, st.Slim, runtime.GOARCH, year, week)
	for _, r := range runs {
		fmt.Fprintf(h, "run %d\n%s", len(r), r)
	}
	key := "rootfs-" + hex.EncodeToString(h.Sum(nil))[:24]
	if b.used == nil {
		b.used = map[string]bool{}
	}
	b.used[key] = true
	cacheLayout := filepath.Join(b.o.Cache, "rootfs")
	if l, err := cachedLayer(cacheLayout, key); err != nil {
		return nil, err
	} else if l != nil {
		fmt.Fprintf(b.o.Log, "stage %s: root filesystem from the cache (%s)\n", st.Name, key)
		return l, nil
	}

	fmt.Fprintf(b.o.Log, "stage %s: building the root filesystem with mmdebstrap (%s; several minutes, once)\n", st.Name, key)
	args := []string{"--variant=minbase", "--mode=root", "--format=tar", "--dpkgopt=force-unsafe-io"}
	if st.Slim {
		for _, e := range slimExcludes {
			args = append(args, "--dpkgopt="+e)
		}
	}
	for i, r := range runs {
		script := filepath.Join(b.tmp, fmt.Sprintf("run-%d.sh", i))
		if err := os.WriteFile(script, []byte(r), 0o644); err != nil {
			return nil, err
		}
		// The script's text becomes /bin/sh -c's argument inside the root,
		// with a clean environment (the hook's own variables stay out).
		args = append(args, fmt.Sprintf(`--customize-hook=chroot "$1" /usr/bin/env -i /bin/sh -c "$(cat '%s')"`, script))
	}
	raw := filepath.Join(b.tmp, "rootfs.tar")
	args = append(args, st.Suite, raw)
	cmd := exec.CommandContext(ctx, b.o.Mmdebstrap, args...)
	cmd.Stdout, cmd.Stderr = b.o.Log, b.o.Log
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s:%d: mmdebstrap for stage %s: %w", b.f.Name, st.Line, st.Name, err)
	}
	// Filtered and compressed in one pass: the layer's digest is then a
	// hash of the file, not a second compression.
	clean := filepath.Join(b.tmp, "layer.tar.gz")
	if err := filterRootfs(raw, clean); err != nil {
		return nil, fmt.Errorf("stage %s: %w", st.Name, err)
	}
	os.Remove(raw)
	layer, err := tarball.LayerFromFile(clean, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	// Kept in the cache as a one-layer image under its key, so that later
	// builds neither run mmdebstrap nor compress again.
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, MediaType: types.OCILayer})
	if err != nil {
		return nil, err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	lp, err := openOrCreate(cacheLayout)
	if err != nil {
		return nil, err
	}
	if err := pruneCache(lp, b.used); err != nil {
		return nil, fmt.Errorf("cache root filesystem: remove older entries: %w", err)
	}
	if err := lp.ReplaceImage(img, match.Annotation(RefAnnotation, key),
		layout.WithAnnotations(map[string]string{RefAnnotation: key})); err != nil {
		return nil, fmt.Errorf("cache root filesystem: %w", err)
	}
	os.Remove(clean)
	l, err := cachedLayer(cacheLayout, key)
	if err != nil || l == nil {
		return nil, fmt.Errorf("cache root filesystem %s: not readable after writing: %v", key, err)
	}
	return l, nil
}

// pruneCache removes the root filesystems of the cache layout (each one
// image of one layer, about 430 MB) other than those this build uses,
// before a new one is written: the old ones would fill the disk week after
// week.
func pruneCache(lp layout.Path, keep map[string]bool) error {
	idx, err := lp.ImageIndex()
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	// The blobs of an entry: its manifest, config and layers.
	blobsOf := func(d v1.Descriptor) []v1.Hash {
		out := []v1.Hash{d.Digest}
		img, err := lp.Image(d.Digest)
		if err != nil {
			return out // a broken entry: its descriptor goes below
		}
		if c, err := img.ConfigName(); err == nil {
			out = append(out, c)
		}
		if ls, err := img.Layers(); err == nil {
			for _, l := range ls {
				if dg, err := l.Digest(); err == nil {
					out = append(out, dg)
				}
			}
		}
		return out
	}
	// A rebuild of unchanged packages can give a kept entry the same
	// blobs (reproducible digests): those stay.
	kept := map[v1.Hash]bool{}
	var blobs []v1.Hash
	for _, d := range im.Manifests {
		if keep[d.Annotations[RefAnnotation]] {
			for _, h := range blobsOf(d) {
				kept[h] = true
			}
			continue
		}
		blobs = append(blobs, blobsOf(d)...)
	}
	if err := lp.RemoveDescriptors(func(d v1.Descriptor) bool { return !keep[d.Annotations[RefAnnotation]] }); err != nil {
		return err
	}
	for _, h := range blobs {
		if kept[h] {
			continue
		}
		if err := lp.RemoveBlob(h); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

func openOrCreate(dir string) (layout.Path, error) {
	if lp, err := layout.FromPath(dir); err == nil {
		return lp, nil
	}
	return layout.Write(dir, empty.Index)
}

// cachedLayer returns the one layer of the image named key in the cache
// layout, or nil when there is none.
func cachedLayer(dir, key string) (v1.Layer, error) {
	lp, err := layout.FromPath(dir)
	if err != nil {
		return nil, nil
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("image cache %s: %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("image cache %s: %w", dir, err)
	}
	for _, d := range im.Manifests {
		if d.Annotations[RefAnnotation] != key {
			continue
		}
		img, err := lp.Image(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("image cache %s: %w", dir, err)
		}
		ls, err := img.Layers()
		if err != nil || len(ls) != 1 {
			return nil, fmt.Errorf("image cache %s: %s: want one layer: %v", dir, key, err)
		}
		return ls[0], nil
	}
	return nil, nil
}

// linkCachedBlobs hard-links the cache's layer blobs into the new layout,
// where writing the image then finds them present instead of copying
// hundreds of megabytes; a failed link (another file system) just means a
// copy.
func (b *builder) linkCachedBlobs(img v1.Image, out string) error {
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		src := filepath.Join(b.o.Cache, "rootfs", "blobs", d.Algorithm, d.Hex)
		if _, err := os.Stat(src); err != nil {
			continue
		}
		dst := filepath.Join(out, "blobs", d.Algorithm, d.Hex)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		_ = os.Link(src, dst)
	}
	return nil
}

// filterRootfs rewrites mmdebstrap's tarball as a gzip-compressed image layer: names
// without "./", and without what a container runtime provides itself
// (device nodes, /proc and /sys contents, resolv.conf, hostname, hosts),
// as Debian's official images leave them out.
func filterRootfs(in, out string) error {
	r, err := os.Open(in)
	if err != nil {
		return err
	}
	defer r.Close()
	w, err := os.Create(out)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	zw, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err != nil {
		w.Close()
		return err
	}
	tr, tw := tar.NewReader(bufio.NewReaderSize(r, 1<<20)), tar.NewWriter(zw)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			w.Close()
			return fmt.Errorf("read mmdebstrap's tarball: %w", err)
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		if name == "" || name == "." {
			continue
		}
		clean := strings.TrimSuffix(name, "/")
		switch {
		case hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock || hdr.Typeflag == tar.TypeFifo:
			continue
		case strings.HasPrefix(clean, "dev/"), strings.HasPrefix(clean, "proc/"), strings.HasPrefix(clean, "sys/"):
			continue
		case clean == "etc/resolv.conf", clean == "etc/hostname", clean == "etc/hosts":
			continue
		}
		hdr.Name = name
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = strings.TrimPrefix(hdr.Linkname, "./")
		}
		if err := tw.WriteHeader(hdr); err != nil {
			w.Close()
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			w.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		w.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		w.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// child makes a derived stage: its parent's image, a layer per COPY, and
// its configuration instructions.
func (b *builder) child(ctx context.Context, st *Stage) (v1.Image, *v1.Config, []v1.History, error) {
	img, err := b.image(ctx, st.Parent)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg, copies, hist, err := b.childConfig(st)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, in := range copies {
		layer, err := b.copyLayer(ctx, st, in)
		if err != nil {
			return nil, nil, nil, err
		}
		img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer})
		if err != nil {
			return nil, nil, nil, err
		}
	}
	return img, cfg, hist, nil
}

// childConfig reads a derived stage's instructions on top of its parent's
// configuration (b.cfgs) without building anything: the image
// configuration, the COPY instructions in order, and the history.
func (b *builder) childConfig(st *Stage) (*v1.Config, []Instruction, []v1.History, error) {
	pc := b.cfgs[st.Parent]
	cfg := &v1.Config{Env: append([]string(nil), pc.Env...), User: pc.User, WorkingDir: pc.WorkingDir,
		Entrypoint: pc.Entrypoint, Cmd: pc.Cmd}
	if pc.Labels != nil {
		cfg.Labels = map[string]string{}
		for k, v := range pc.Labels {
			cfg.Labels[k] = v
		}
	}
	cfg.ExposedPorts = copySet(pc.ExposedPorts)
	cfg.Volumes = copySet(pc.Volumes)
	hist := append([]v1.History(nil), b.hist[st.Parent]...)
	var copies []Instruction
	file := b.f.Name
	var err error
	for _, in := range st.Insts {
		h := v1.History{Created: v1.Time{Time: b.created()}, CreatedBy: in.Cmd + " " + in.Rest, EmptyLayer: true}
		switch in.Cmd {
		case "COPY":
			if err := b.checkCopy(st, in); err != nil {
				return nil, nil, nil, err
			}
			copies = append(copies, in)
			h.EmptyLayer = false
			if from := in.Flags["from"]; from != "" {
				h.CreatedBy = "COPY --from=" + from + " " + in.Rest
			}
		case "ENV", "LABEL":
			kv, err := keyValues(file, in)
			if err != nil {
				return nil, nil, nil, err
			}
			for _, p := range kv {
				if in.Cmd == "ENV" {
					cfg.Env = setEnv(cfg.Env, p[0], p[1])
				} else {
					if cfg.Labels == nil {
						cfg.Labels = map[string]string{}
					}
					cfg.Labels[p[0]] = p[1]
				}
			}
		case "USER":
			if !numericUserRE.MatchString(in.Rest) {
				return nil, nil, nil, errAt(file, in.Line, "USER %q: want numeric UID[:GID], which a runtime's runAsNonRoot can check", in.Rest)
			}
			cfg.User = in.Rest
		case "WORKDIR":
			p, err := absPath(file, in, in.Rest)
			if err != nil {
				return nil, nil, nil, err
			}
			cfg.WorkingDir = p
		case "VOLUME":
			vols := strings.Fields(in.Rest)
			if strings.HasPrefix(in.Rest, "[") {
				if vols, err = execForm(file, in); err != nil {
					return nil, nil, nil, err
				}
			}
			for _, v := range vols {
				if _, err := absPath(file, in, v); err != nil {
					return nil, nil, nil, err
				}
				if cfg.Volumes == nil {
					cfg.Volumes = map[string]struct{}{}
				}
				cfg.Volumes[v] = struct{}{}
			}
		case "EXPOSE":
			for _, p := range strings.Fields(in.Rest) {
				port, proto, _ := strings.Cut(p, "/")
				if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || (proto != "" && proto != "tcp" && proto != "udp") {
					return nil, nil, nil, errAt(file, in.Line, "EXPOSE %q: want PORT[/tcp|/udp]", p)
				}
				if proto == "" {
					proto = "tcp"
				}
				if cfg.ExposedPorts == nil {
					cfg.ExposedPorts = map[string]struct{}{}
				}
				cfg.ExposedPorts[port+"/"+proto] = struct{}{}
			}
		case "ENTRYPOINT":
			v, err := execForm(file, in)
			if err != nil {
				return nil, nil, nil, err
			}
			// As an engine does: a new ENTRYPOINT drops an inherited CMD.
			cfg.Entrypoint, cfg.Cmd = v, nil
		case "CMD":
			v, err := execForm(file, in)
			if err != nil {
				return nil, nil, nil, err
			}
			cfg.Cmd = v
		}
		hist = append(hist, h)
	}
	return cfg, copies, hist, nil
}

var numericUserRE = regexp.MustCompile(`^[0-9]+(:[0-9]+)?$`)

func copySet(m map[string]struct{}) map[string]struct{} {
	if m == nil {
		return nil
	}
	out := make(map[string]struct{}, len(m))
	for k := range m {
		out[k] = struct{}{}
	}
	return out
}

// checkCopy checks a COPY of a single file, from the build context or
// from a build stage's go build output, without building anything.
func (b *builder) checkCopy(st *Stage, in Instruction) error {
	file := b.f.Name
	w := strings.Fields(in.Rest)
	if len(w) != 2 || strings.HasPrefix(in.Rest, "[") {
		return errAt(file, in.Line, "COPY: want one source and one destination file (SRC DEST)")
	}
	if _, err := absPath(file, in, w[1]); err != nil {
		return err
	}
	if from := in.Flags["from"]; from != "" {
		bs := b.f.Stage(from)
		if bs == nil || bs.Kind != stageGo || bs.Line > st.Line {
			return errAt(file, in.Line, "COPY --from=%s: no earlier golang build stage of that name", from)
		}
	} else {
		rel := path.Clean(w[0])
		if path.IsAbs(rel) || rel == ".." || strings.HasPrefix(rel, "../") || strings.ContainsAny(rel, "*?[$\\") {
			return errAt(file, in.Line, "COPY %s: want a file inside the build context", w[0])
		}
		fi, err := os.Stat(filepath.Join(b.o.Context, filepath.FromSlash(rel)))
		if err != nil || !fi.Mode().IsRegular() {
			return errAt(file, in.Line, "COPY %s: not a regular file in the build context (%v)", w[0], err)
		}
	}
	if c := in.Flags["chown"]; c != "" {
		u, g, ok := strings.Cut(c, ":")
		_, e1 := strconv.Atoi(u)
		_, e2 := strconv.Atoi(g)
		if !ok || e1 != nil || e2 != nil {
			return errAt(file, in.Line, "COPY --chown=%s: want numeric UID:GID", c)
		}
	}
	if c := in.Flags["chmod"]; c != "" {
		if m, err := strconv.ParseInt(c, 8, 32); err != nil || m > 0o7777 || m < 0 {
			return errAt(file, in.Line, "COPY --chmod=%s: want an octal mode", c)
		}
	}
	return nil
}

// copyLayer makes the layer of one COPY checked by checkCopy.
func (b *builder) copyLayer(ctx context.Context, st *Stage, in Instruction) (v1.Layer, error) {
	w := strings.Fields(in.Rest)
	src, dst := w[0], w[1]
	var srcFile string
	mode := int64(0o644)
	if from := in.Flags["from"]; from != "" {
		outs, err := b.goBuild(ctx, b.f.Stage(from))
		if err != nil {
			return nil, err
		}
		if srcFile = outs[src]; srcFile == "" {
			return nil, errAt(b.f.Name, in.Line, "COPY --from=%s %s: the stage builds no such file (go build -o)", from, src)
		}
		mode = 0o755
	} else {
		srcFile = filepath.Join(b.o.Context, filepath.FromSlash(path.Clean(src)))
		if fi, err := os.Stat(srcFile); err == nil && fi.Mode()&0o111 != 0 {
			mode = 0o755
		}
	}
	uid, gid := 0, 0
	if c := in.Flags["chown"]; c != "" {
		u, g, _ := strings.Cut(c, ":")
		uid, _ = strconv.Atoi(u)
		gid, _ = strconv.Atoi(g)
	}
	if c := in.Flags["chmod"]; c != "" {
		mode, _ = strconv.ParseInt(c, 8, 32)
	}
	tarPath := filepath.Join(b.tmp, fmt.Sprintf("copy-%d.tar", in.Line))
	if err := singleFileTar(tarPath, srcFile, dst, mode, uid, gid, b.created()); err != nil {
		return nil, errAt(b.f.Name, in.Line, "COPY: %v", err)
	}
	return tarball.LayerFromFile(tarPath, tarball.WithMediaType(types.OCILayer))
}

// singleFileTar writes a layer holding dst (and its parent directories,
// root-owned 0755 as in Debian) with src's content.
func singleFileTar(tarPath, src, dst string, mode int64, uid, gid int, mtime time.Time) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.Create(tarPath)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(out)
	var dirs []string
	for d := path.Dir(dst); d != "/"; d = path.Dir(d) {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs) // parents first
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755,
			ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			out.Close()
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(dst, "/"), Mode: mode,
		Size: fi.Size(), Uid: uid, Gid: gid, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
		out.Close()
		return err
	}
	if _, err := io.Copy(tw, in); err != nil {
		out.Close()
		return err
	}
	if err := tw.Close(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

var envAssignRE = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=[A-Za-z0-9_./:,+-]*$`)

// goBuild runs a build stage's go build instructions with the host's Go in
// the build context and returns image path -> built file.
func (b *builder) goBuild(ctx context.Context, st *Stage) (map[string]string, error) {
	if outs, ok := b.goOut[st]; ok {
		return outs, nil
	}
	file := b.f.Name
	if err := b.checkGoVersion(st); err != nil {
		return nil, err
	}
	env := []string{"GOOS=linux", "GOARCH=" + runtime.GOARCH}
	outs := map[string]string{}
	for _, in := range st.Insts {
		switch in.Cmd {
		case "WORKDIR":
			if _, err := absPath(file, in, in.Rest); err != nil {
				return nil, err
			}
		case "COPY": // the context is the host's directory itself
		case "ENV":
			kv, err := keyValues(file, in)
			if err != nil {
				return nil, err
			}
			for _, p := range kv {
				env = append(env, p[0]+"="+p[1])
			}
		case "RUN":
			if strings.ContainsAny(in.Rest, "\"'`$;&|<>(){}\\*?") {
				return nil, errAt(file, in.Line, "RUN in a build stage: no quotes, variables or shell operators (the engine-less builder runs go build itself)")
			}
			w := strings.Fields(in.Rest)
			runEnv := append([]string(nil), env...)
			for len(w) > 0 && envAssignRE.MatchString(w[0]) {
				runEnv = append(runEnv, w[0])
				w = w[1:]
			}
			if len(w) == 3 && w[0] == "go" && w[1] == "mod" && w[2] == "download" {
				continue // go build below downloads what it needs
			}
			if len(w) < 5 || w[0] != "go" || w[1] != "build" {
				return nil, errAt(file, in.Line, "RUN in a build stage: only `go mod download` and `[VAR=value ...] go build [flags] -o /PATH ./PKG` are supported, got %q", in.Rest)
			}
			flags, pkg := w[2:len(w)-1], w[len(w)-1]
			if !strings.HasPrefix(pkg, "./") {
				return nil, errAt(file, in.Line, "go build: the last word must be one package of the context (./cmd/...), got %q", pkg)
			}
			var outPath string
			var pass []string
			for i := 0; i < len(flags); i++ {
				switch {
				case flags[i] == "-o" && i+1 < len(flags):
					outPath = flags[i+1]
					i++
				case strings.HasPrefix(flags[i], "-o=") || flags[i] == "-o":
					return nil, errAt(file, in.Line, "go build: write -o PATH")
				case strings.HasPrefix(flags[i], "-"):
					pass = append(pass, flags[i])
				default:
					return nil, errAt(file, in.Line, "go build: one package only; unexpected %q", flags[i])
				}
			}
			if _, err := absPath(file, in, outPath); err != nil {
				return nil, err
			}
			host := filepath.Join(b.tmp, "go-"+strconv.Itoa(in.Line))
			args := append(append([]string{"build"}, pass...), "-o", host, pkg)
			fmt.Fprintf(b.o.Log, "stage %s: %s go %s\n", st.Name, strings.Join(runEnv, " "), strings.Join(args, " "))
			cmd := exec.CommandContext(ctx, b.o.Go, args...)
			cmd.Dir = b.o.Context
			cmd.Env = append(os.Environ(), runEnv...)
			if out, err := cmd.CombinedOutput(); err != nil {
				return nil, errAt(file, in.Line, "go build: %v\n%s", err, out)
			}
			outs[outPath] = host
		}
	}
	b.goOut[st] = outs
	return outs, nil
}

// checkGoVersion holds the build stage's golang tag to go.mod's go
// directive, so that an engine's build uses the Go the module asks for.
func (b *builder) checkGoVersion(st *Stage) error {
	mod, err := os.ReadFile(filepath.Join(b.o.Context, "go.mod"))
	if err != nil {
		return fmt.Errorf("build context: %w", err)
	}
	m := regexp.MustCompile(`(?m)^go ([0-9]+\.[0-9]+)`).FindSubmatch(mod)
	if m == nil {
		return errors.New("build context: go.mod has no go directive")
	}
	if string(m[1]) != st.GoVersion {
		return fmt.Errorf("%s:%d: FROM %s: go.mod asks for Go %s, so the tag must start golang:%s-", b.f.Name, st.Line, st.From, m[1], m[1])
	}
	return nil
}

// Package deploy holds no code: its tests check the deployment files beside
// them. No cluster or Nomad agent runs here, so what they prove is that the
// files decode strictly against the orchestrators' own types and that their
// references agree with each other and with the daemon's configuration.
package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/rpacloud/rpacloud/core/config"
)

const k8sDir = "kubernetes"

// secretsExample holds the Secrets the manifests name, as a template the
// operator fills in; it is decoded and cross-checked like the rest but is
// not a kustomize resource.
const secretsExample = "secrets.example.yaml"

// kinds are the objects the manifests may hold: anything else is an error,
// so a typo in apiVersion or kind cannot slip through as "unknown, skipped".
var kinds = map[string]func() any{
	"v1/ConfigMap":                  func() any { return new(corev1.ConfigMap) },
	"v1/Secret":                     func() any { return new(corev1.Secret) },
	"v1/Service":                    func() any { return new(corev1.Service) },
	"v1/ServiceAccount":             func() any { return new(corev1.ServiceAccount) },
	"apps/v1/Deployment":            func() any { return new(appsv1.Deployment) },
	"networking.k8s.io/v1/Ingress":  func() any { return new(networkingv1.Ingress) },
	"policy/v1/PodDisruptionBudget": func() any { return new(policyv1.PodDisruptionBudget) },
	"kustomize.config.k8s.io/v1beta1/Kustomization": nil, // decoded by readKustomization
}

// kustomization is the part of kustomize's Kustomization the directory
// uses; decoding it strictly rejects any other field, so a field added to
// kustomization.yaml must be added here (and understood) first.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// manifests is every object of the directory, by kind, as decoded.
type manifests struct {
	kust         kustomization
	deployments  []*appsv1.Deployment
	services     []*corev1.Service
	ingresses    []*networkingv1.Ingress
	pdbs         []*policyv1.PodDisruptionBudget
	configMaps   map[string]*corev1.ConfigMap
	secrets      map[string]*corev1.Secret
	serviceAccts map[string]*corev1.ServiceAccount
}

func TestKubernetesManifestsDecodeStrictly(t *testing.T) {
	m, err := loadManifests(k8sDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.deployments) != 1 || len(m.services) != 1 || len(m.ingresses) != 1 || len(m.pdbs) != 1 {
		t.Fatalf("want one Deployment, Service, Ingress and PodDisruptionBudget, got %d, %d, %d, %d",
			len(m.deployments), len(m.services), len(m.ingresses), len(m.pdbs))
	}
	for _, err := range checkManifests(m) {
		t.Error(err)
	}
}

// TestKubernetesChecksCatchBreaks breaks each reference on purpose and
// expects checkManifests to name it, so a check that passes vacuously is
// caught.
func TestKubernetesChecksCatchBreaks(t *testing.T) {
	breaks := []struct {
		name   string
		break_ func(m *manifests)
		want   string
	}{
		{"service selector", func(m *manifests) { m.services[0].Spec.Selector["app.kubernetes.io/name"] = "other" }, "selects no pod"},
		{"service target port", func(m *manifests) { m.services[0].Spec.Ports[0].TargetPort = intstr.FromString("web") }, `target port "web"`},
		{"ingress service", func(m *manifests) {
			m.ingresses[0].Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name = "nope"
		}, `service "nope"`},
		{"ingress port", func(m *manifests) {
			m.ingresses[0].Spec.Rules[0].HTTP.Paths[0].Backend.Service.Port = networkingv1.ServiceBackendPort{Name: "grpc"}
		}, `port "grpc"`},
		{"ingress tls secret", func(m *manifests) { m.ingresses[0].Spec.TLS[0].SecretName = "gone" }, `Secret "gone"`},
		{"pdb selector", func(m *manifests) {
			m.pdbs[0].Spec.Selector.MatchLabels["app.kubernetes.io/component"] = "robot"
		}, "selects no pod"},
		{"probe port", func(m *manifests) {
			m.deployments[0].Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Port = intstr.FromInt32(9191)
		}, "readinessProbe port 9191"},
		{"secret key", func(m *manifests) {
			m.deployments[0].Spec.Template.Spec.Containers[0].Env[0].ValueFrom.SecretKeyRef.Key = "password"
		}, `key "password"`},
		{"config map", func(m *manifests) { delete(m.configMaps, "rpacloud-config") }, `ConfigMap "rpacloud-config"`},
		{"secret", func(m *manifests) { delete(m.secrets, "rpacloud-vault") }, `Secret "rpacloud-vault"`},
		{"service account", func(m *manifests) { delete(m.serviceAccts, "rpacloud") }, `ServiceAccount "rpacloud"`},
		{"anti-affinity", func(m *manifests) {
			m.deployments[0].Spec.Template.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution[0].LabelSelector.MatchLabels["app.kubernetes.io/name"] = "x"
		}, "anti-affinity"},
		{"read-only root", func(m *manifests) {
			f := false
			m.deployments[0].Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = &f
		}, "readOnlyRootFilesystem"},
		{"image", func(m *manifests) { m.deployments[0].Spec.Template.Spec.Containers[0].Image = "nginx" }, `image "nginx"`},
		{"listen port", func(m *manifests) {
			m.configMaps["rpacloud-config"].Data["server.hcl"] = strings.Replace(m.configMaps["rpacloud-config"].Data["server.hcl"], "0.0.0.0:8080", "0.0.0.0:9000", 1)
		}, "listens on port 9000"},
		{"secret id file", func(m *manifests) {
			m.secrets["rpacloud-vault"].StringData["vault.hcl"] = strings.Replace(m.secrets["rpacloud-vault"].StringData["vault.hcl"], "/etc/rpacloud/vault-secret-id", "/etc/vault/id", 1)
		}, "/etc/vault/id"},
		{"bad hcl", func(m *manifests) { m.configMaps["rpacloud-config"].Data["server.hcl"] += "\nserver {\n" }, "server.hcl"},
	}
	for _, b := range breaks {
		t.Run(b.name, func(t *testing.T) {
			m, err := loadManifests(k8sDir) // a fresh copy: breaks mutate it
			if err != nil {
				t.Fatal(err)
			}
			b.break_(m)
			errs := checkManifests(m)
			if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), b.want) }) {
				t.Errorf("broken %s: want an error containing %q, got %v", b.name, b.want, errs)
			}
		})
	}
}

// TestKubernetesDecodeRefusesUnknown shows the decoding is strict: an
// unknown field, a misspelt kind and an unknown apiVersion are errors
// naming the file and document.
func TestKubernetesDecodeRefusesUnknown(t *testing.T) {
	cases := map[string]struct{ doc, want string }{
		"unknown field": {"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {selectr: {a: b}}\n", `unknown field "spec.selectr"`},
		"unknown kind":  {"apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n", "apps/v1/Deploymnet"},
		"old version":   {"apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: x}\n", "policy/v1beta1/PodDisruptionBudget"},
		"duplicate key": {"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b, a: c}\n", `key "a" already set`},
		"wrong type":    {"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: two}\n", "replicas"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [bad.yaml]\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: ok}\n---\n"+c.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := loadManifests(dir)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.yaml document 2") {
				t.Fatalf("want an error naming bad.yaml document 2 and %q, got %v", c.want, err)
			}
		})
	}
}

// loadManifests reads kustomization.yaml, checks that it lists exactly the
// YAML files of dir (but the Secrets' template), and decodes every
// document of them strictly.
func loadManifests(dir string) (*manifests, error) {
	m := &manifests{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}, serviceAccts: map[string]*corev1.ServiceAccount{}}
	kb, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	if err := yaml.UnmarshalStrict(kb, &m.kust); err != nil {
		return nil, fmt.Errorf("%s/kustomization.yaml: %w", dir, err)
	}
	if m.kust.APIVersion+"/"+m.kust.Kind != "kustomize.config.k8s.io/v1beta1/Kustomization" {
		return nil, fmt.Errorf("%s/kustomization.yaml: apiVersion/kind %s/%s, want kustomize.config.k8s.io/v1beta1 Kustomization", dir, m.kust.APIVersion, m.kust.Kind)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	var onDisk []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" && b != secretsExample {
			onDisk = append(onDisk, b)
		}
	}
	listed := slices.Clone(m.kust.Resources)
	sort.Strings(listed)
	if !slices.Equal(listed, onDisk) {
		return nil, fmt.Errorf("%s/kustomization.yaml: resources %v, but the directory's manifests are %v", dir, listed, onDisk)
	}
	read := m.kust.Resources
	if _, err := os.Stat(filepath.Join(dir, secretsExample)); err == nil {
		read = append(slices.Clone(read), secretsExample)
	}
	for _, name := range read {
		if err := m.decodeFile(filepath.Join(dir, name)); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *manifests) decodeFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for n := 1; ; n++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s document %d: %w", filepath.Base(path), n, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			n--
			continue
		}
		if err := m.decodeDoc(doc); err != nil {
			return fmt.Errorf("%s document %d: %w", filepath.Base(path), n, err)
		}
	}
}

func (m *manifests) decodeDoc(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	key := tm.APIVersion + "/" + tm.Kind
	mk, ok := kinds[key]
	if !ok || mk == nil {
		return fmt.Errorf("unknown apiVersion/kind %s", key)
	}
	// YAML to JSON refusing duplicate keys, then JSON to the API type
	// refusing unknown and duplicate fields with their paths, as the API
	// server's strict field validation does.
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	obj := mk()
	strict, err := kjson.UnmarshalStrict(j, obj)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	if len(strict) > 0 {
		return fmt.Errorf("%s: %w", key, errors.Join(strict...))
	}
	if meta, ok := obj.(metav1.Object); ok && meta.GetName() == "" {
		return fmt.Errorf("%s without metadata.name", key)
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		m.deployments = append(m.deployments, o)
	case *corev1.Service:
		m.services = append(m.services, o)
	case *networkingv1.Ingress:
		m.ingresses = append(m.ingresses, o)
	case *policyv1.PodDisruptionBudget:
		m.pdbs = append(m.pdbs, o)
	case *corev1.ConfigMap:
		m.configMaps[o.Name] = o
	case *corev1.Secret:
		m.secrets[o.Name] = o
	case *corev1.ServiceAccount:
		m.serviceAccts[o.Name] = o
	}
	return nil
}

// checkManifests returns every reference that does not agree, and every
// requirement of deploy/README.md the manifests miss.
func checkManifests(m *manifests) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	images := map[string]bool{}
	for _, im := range m.kust.Images {
		images[im.Name] = true
	}
	for _, d := range m.deployments {
		where := "Deployment " + d.Name
		pod := labels.Set(d.Spec.Template.Labels)
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(pod) {
			fail("%s: selector does not select its own pod template's labels (%v)", where, err)
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
			fail("%s: want 2 replicas", where)
		}
		spec := d.Spec.Template.Spec
		if sa := spec.ServiceAccountName; sa != "" && m.serviceAccts[sa] == nil {
			fail("%s: ServiceAccount %q is not defined", where, sa)
		}
		anti := spec.Affinity
		if anti == nil || anti.PodAntiAffinity == nil || len(anti.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) == 0 {
			fail("%s: no required pod anti-affinity", where)
		} else {
			for _, term := range anti.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
				s, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
				if err != nil || !s.Matches(pod) || term.TopologyKey != "kubernetes.io/hostname" {
					fail("%s: anti-affinity term does not keep its own pods on distinct nodes", where)
				}
			}
		}
		if psc := spec.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
			fail("%s: pod securityContext lacks runAsNonRoot: true", where)
		}
		volumes := map[string]corev1.Volume{}
		for _, v := range spec.Volumes {
			volumes[v.Name] = v
			errs = append(errs, m.checkVolume(where, v)...)
		}
		for _, c := range spec.Containers {
			cw := where + " container " + c.Name
			if !images[c.Image] {
				fail("%s: image %q is not a kustomization images name, so `kustomize edit set image` would not reach it", cw, c.Image)
			}
			if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
				fail("%s: securityContext lacks readOnlyRootFilesystem: true", cw)
			}
			if c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
				fail("%s: securityContext lacks allowPrivilegeEscalation: false", cw)
			}
			if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				fail("%s: no memory request and limit", cw)
			}
			for name, p := range map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe, "startupProbe": c.StartupProbe} {
				if p == nil {
					if name != "startupProbe" {
						fail("%s: no %s", cw, name)
					}
					continue
				}
				var port intstr.IntOrString
				switch {
				case p.HTTPGet != nil:
					port = p.HTTPGet.Port
				case p.TCPSocket != nil:
					port = p.TCPSocket.Port
				default:
					fail("%s: %s is neither httpGet nor tcpSocket", cw, name)
					continue
				}
				if !containerHasPort(c, port) {
					fail("%s: %s port %s is not a port of the container", cw, name, port.String())
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					continue
				}
				if r := e.ValueFrom.SecretKeyRef; r != nil {
					if err := m.secretKey(r.Name, r.Key); err != nil {
						fail("%s: env %s: %v", cw, e.Name, err)
					}
				}
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
					if err := m.configMapKey(r.Name, r.Key); err != nil {
						fail("%s: env %s: %v", cw, e.Name, err)
					}
				}
			}
			for _, vm := range c.VolumeMounts {
				if _, ok := volumes[vm.Name]; !ok {
					fail("%s: volumeMount %q names no volume", cw, vm.Name)
				}
			}
			errs = append(errs, m.checkDaemonConfig(cw, c, volumes)...)
		}
		for _, s := range m.services {
			if !labels.SelectorFromSet(s.Spec.Selector).Matches(pod) || len(s.Spec.Selector) == 0 {
				fail("Service %s: selector %v selects no pod of %s", s.Name, s.Spec.Selector, where)
				continue
			}
			for _, p := range s.Spec.Ports {
				if !slices.ContainsFunc(spec.Containers, func(c corev1.Container) bool { return containerHasPort(c, p.TargetPort) }) {
					fail("Service %s: target port %q of port %s is not a container port of %s", s.Name, p.TargetPort.String(), p.Name, where)
				}
			}
		}
		for _, p := range m.pdbs {
			s, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
			if err != nil || s.Empty() || !s.Matches(pod) {
				fail("PodDisruptionBudget %s: selector selects no pod of %s", p.Name, where)
			}
			if p.Spec.MinAvailable == nil || p.Spec.MinAvailable.IntValue() != 1 {
				fail("PodDisruptionBudget %s: want minAvailable 1", p.Name)
			}
		}
	}
	for _, in := range m.ingresses {
		for _, tls := range in.Spec.TLS {
			if m.secrets[tls.SecretName] == nil {
				fail("Ingress %s: TLS Secret %q is not defined (%s)", in.Name, tls.SecretName, secretsExample)
			}
		}
		for _, r := range in.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for _, p := range r.HTTP.Paths {
				errs = append(errs, m.checkBackend("Ingress "+in.Name+" path "+p.Path, p.Backend)...)
			}
		}
		for _, a := range []string{"nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"} {
			if n, err := strconv.Atoi(in.Annotations[a]); err != nil || n < 3600 {
				fail("Ingress %s: %s is %q, want at least 3600 (seconds) for subscriptions and long polls", in.Name, a, in.Annotations[a])
			}
		}
	}
	return errs
}

func (m *manifests) checkBackend(where string, b networkingv1.IngressBackend) []error {
	if b.Service == nil {
		return []error{fmt.Errorf("%s: backend names no service", where)}
	}
	i := slices.IndexFunc(m.services, func(s *corev1.Service) bool { return s.Name == b.Service.Name })
	if i < 0 {
		return []error{fmt.Errorf("%s: backend service %q is not defined", where, b.Service.Name)}
	}
	for _, p := range m.services[i].Spec.Ports {
		if (b.Service.Port.Name != "" && p.Name == b.Service.Port.Name) || (b.Service.Port.Name == "" && p.Port == b.Service.Port.Number) {
			return nil
		}
	}
	return []error{fmt.Errorf("%s: backend port %q/%d is not a port of Service %s", where, b.Service.Port.Name, b.Service.Port.Number, b.Service.Name)}
}

func (m *manifests) checkVolume(where string, v corev1.Volume) []error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: volume %s: %w", where, v.Name, err))
		}
	}
	if s := v.Secret; s != nil {
		add(m.secretItems(s.SecretName, s.Items))
	}
	if c := v.ConfigMap; c != nil {
		add(m.configMapItems(c.Name, c.Items))
	}
	if p := v.Projected; p != nil {
		for _, src := range p.Sources {
			if s := src.Secret; s != nil {
				add(m.secretItems(s.Name, s.Items))
			}
			if c := src.ConfigMap; c != nil {
				add(m.configMapItems(c.Name, c.Items))
			}
		}
	}
	return errs
}

func (m *manifests) secretItems(name string, items []corev1.KeyToPath) error {
	if m.secrets[name] == nil {
		return fmt.Errorf("Secret %q is not defined (%s)", name, secretsExample)
	}
	for _, it := range items {
		if err := m.secretKey(name, it.Key); err != nil {
			return err
		}
	}
	return nil
}

func (m *manifests) configMapItems(name string, items []corev1.KeyToPath) error {
	if m.configMaps[name] == nil {
		return fmt.Errorf("ConfigMap %q is not defined", name)
	}
	for _, it := range items {
		if err := m.configMapKey(name, it.Key); err != nil {
			return err
		}
	}
	return nil
}

func (m *manifests) secretKey(name, key string) error {
	s := m.secrets[name]
	if s == nil {
		return fmt.Errorf("Secret %q is not defined (%s)", name, secretsExample)
	}
	if _, ok := s.StringData[key]; ok {
		return nil
	}
	if _, ok := s.Data[key]; ok {
		return nil
	}
	return fmt.Errorf("Secret %q has no key %q", name, key)
}

func (m *manifests) configMapKey(name, key string) error {
	c := m.configMaps[name]
	if c == nil {
		return fmt.Errorf("ConfigMap %q is not defined", name)
	}
	if _, ok := c.Data[key]; !ok {
		return fmt.Errorf("ConfigMap %q has no key %q", name, key)
	}
	return nil
}

// checkDaemonConfig loads the HCL the container's --config directory
// receives (the *.hcl files of its projected ConfigMaps and Secrets) with
// the daemon's own loader, and checks it against the pod: the listen port
// is the container's, data_dir is a writable volume, the AppRole secret ID
// file is mounted, and the database DSN comes from the environment.
func (m *manifests) checkDaemonConfig(where string, c corev1.Container, volumes map[string]corev1.Volume) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(where+": "+format, a...)) }
	i := slices.Index(c.Args, "--config")
	if len(c.Args) < 1 || c.Args[0] != "server" || i < 0 || i+1 >= len(c.Args) {
		return []error{fmt.Errorf("%s: args %v are not `server --config DIR`", where, c.Args)}
	}
	dir := c.Args[i+1]
	// files maps each path the container sees to its content.
	files := map[string]string{}
	var writable []string
	for _, vm := range c.VolumeMounts {
		v := volumes[vm.Name]
		if v.EmptyDir != nil && !vm.ReadOnly {
			writable = append(writable, vm.MountPath)
		}
		var srcs []corev1.VolumeProjection
		if v.Projected != nil {
			srcs = v.Projected.Sources
		}
		if v.ConfigMap != nil {
			srcs = append(srcs, corev1.VolumeProjection{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: v.ConfigMap.LocalObjectReference, Items: v.ConfigMap.Items}})
		}
		if v.Secret != nil {
			srcs = append(srcs, corev1.VolumeProjection{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: v.Secret.SecretName}, Items: v.Secret.Items}})
		}
		for _, src := range srcs {
			var data map[string]string
			var items []corev1.KeyToPath
			switch {
			case src.ConfigMap != nil && m.configMaps[src.ConfigMap.Name] != nil:
				data, items = m.configMaps[src.ConfigMap.Name].Data, src.ConfigMap.Items
			case src.Secret != nil && m.secrets[src.Secret.Name] != nil:
				data, items = m.secrets[src.Secret.Name].StringData, src.Secret.Items
			}
			if len(items) == 0 {
				for k := range data {
					items = append(items, corev1.KeyToPath{Key: k, Path: k})
				}
			}
			for _, it := range items {
				files[filepath.Join(vm.MountPath, it.Path)] = data[it.Key]
			}
		}
	}
	srcs := map[string][]byte{}
	for p, content := range files {
		if filepath.Dir(p) == dir && strings.HasSuffix(p, ".hcl") {
			srcs[filepath.Base(p)] = []byte(content)
		}
	}
	if len(srcs) == 0 {
		return []error{fmt.Errorf("%s: no *.hcl file is mounted in %s", where, dir)}
	}
	cfg, diags, _ := config.LoadSources(srcs)
	if len(diags) > 0 { // warnings too: a shipped configuration should raise none
		return []error{fmt.Errorf("%s: the configuration in %s does not load cleanly: %s", where, dir, diags.Error())}
	}
	_, port, _ := strings.Cut(cfg.Server.Listen, ":")
	if n, err := strconv.Atoi(port); err != nil || !containerHasPort(c, intstr.FromInt(n)) {
		fail("server listens on port %s, which is not a container port", port)
	}
	if !slices.ContainsFunc(writable, func(w string) bool { return cfg.Server.DataDir == w || strings.HasPrefix(cfg.Server.DataDir, w+"/") }) {
		fail("data_dir %s is not on a writable emptyDir (the root filesystem is read-only)", cfg.Server.DataDir)
	}
	if cfg.Server.Database.Driver != "postgres" || cfg.Server.Database.DSN != "" {
		fail("want database driver postgres with its dsn from RPACLOUD_DATABASE_DSN, got driver %q", cfg.Server.Database.Driver)
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "RPACLOUD_DATABASE_DSN" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
	}) {
		fail("RPACLOUD_DATABASE_DSN is not taken from a Secret")
	}
	if cfg.Vault == nil || cfg.Vault.AuthMethod != "approle" {
		fail("want a vault block with auth_method approle")
	} else if _, ok := files[cfg.Vault.SecretIDFile]; !ok {
		fail("secret_id_file %s is not a mounted file", cfg.Vault.SecretIDFile)
	}
	return errs
}

func containerHasPort(c corev1.Container, p intstr.IntOrString) bool {
	return slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool {
		if p.Type == intstr.String {
			return cp.Name == p.StrVal
		}
		return cp.ContainerPort == p.IntVal
	})
}

// stripComments drops whole-line comments, so that a document holding only
// comments (a file's header before its first ---) counts as empty.
func stripComments(doc []byte) []byte {
	var out []byte
	for line := range bytes.Lines(doc) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
		}
	}
	return out
}

package robotagent

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/rpacloud/rpacloud/core/credentials/secret"
	"github.com/rpacloud/rpacloud/core/pluginhost"
	"github.com/rpacloud/rpacloud/core/retry"
	"github.com/rpacloud/rpacloud/core/robotwire"
	"github.com/rpacloud/rpacloud/plugins/sdk"
)

// Specs tells the robot how to run a process; *SpecClient implements it.
type Specs interface {
	Spec(ctx context.Context, process string) (*robotwire.ProcessSpec, error)
}

// Plugins runs the tasks of crawler and vendor processes through their
// plugins, each in its own process. A plugin that dies during a task ends
// the attempt as an execution error (so the dispatcher gives the task to
// another robot) and is started again for the next task.
type Plugins struct {
	Host  *pluginhost.Host
	Specs Specs
	Log   *slog.Logger
	// CrawlerConfig is each crawler plugin's configuration (e.g. the
	// browser's "chromium" path).
	CrawlerConfig map[string]map[string]string
	// ArtifactDir keeps the artefacts of failed attempts (a screenshot of
	// the failing page), one directory per attempt. Empty: not kept.
	ArtifactDir string
	// ArtifactRetention is how long an attempt's artefacts are kept: the
	// older ones are deleted whenever new ones are kept, so the robot's
	// disk does not fill up. Default DefaultArtifactRetention; negative:
	// forever.
	ArtifactRetention time.Duration
	// VendorPoll is how often a vendor job is read while it runs.
	// Default 5s.
	VendorPoll time.Duration
	// VendorStopWait is how long a vendor job may take to end after the
	// vendor's (soft) stop before the agent kills it. Default 20s, so
	// that the kill and the report fit in the daemon's 60 s stop grace.
	VendorStopWait time.Duration
	// Schema is what a plugin declares about its configuration (the
	// wiring passes the plugin host's Schema, so a third-party plugin's
	// own declaration counts): the vendor's credential is
	// routed by the attributes it declares Sensitive. Nil: none declared,
	// so no secret is passed.
	Schema func(ctx context.Context, kind, name string) []sdk.ConfigAttribute
}

// Run runs one claimed task. The task's credentials are those the daemon
// delivered with the claim (secret.SecretsFrom(ctx)), in memory only.
func (p *Plugins) Run(ctx context.Context, c *robotwire.Claim) (json.RawMessage, error) {
	spec, err := p.Specs.Spec(ctx, c.Process)
	if err != nil {
		return nil, err
	}
	creds := CredentialMap(secret.SecretsFrom(ctx))
	switch spec.Kind {
	case "crawler":
		return p.crawl(ctx, c, spec, creds)
	case "vendor":
		return p.vendorJob(ctx, c, spec, creds)
	}
	return nil, fmt.Errorf("process %q: robots run crawler and vendor processes through plugins, not %q", c.Process, spec.Kind)
}

// CredentialMap turns delivered secrets into the plugin SDK's form:
// credential name → field → value (username, password, totp_seed and the
// extra fields).
func CredentialMap(s secret.Secrets) map[string]map[string]string {
	if len(s) == 0 {
		return nil
	}
	out := make(map[string]map[string]string, len(s))
	for name, sec := range s {
		f := map[string]string{}
		for k, v := range sec.Extra {
			f[k] = v
		}
		if sec.Username != "" {
			f["username"] = sec.Username
		}
		if sec.Password != "" {
			f["password"] = sec.Password
		}
		if sec.TOTPSeed != "" {
			f["totp_seed"] = sec.TOTPSeed
		}
		out[name] = f
	}
	return out
}

func (p *Plugins) crawl(ctx context.Context, c *robotwire.Claim, spec *robotwire.ProcessSpec, creds map[string]map[string]string) (json.RawMessage, error) {
	if spec.Flow == nil {
		return nil, fmt.Errorf("process %q has no flow: give it flow = \"NAME\" in its HCL block", c.Process)
	}
	client, err := p.Host.Crawler(ctx, spec.Runner, p.CrawlerConfig[spec.Runner])
	if err != nil {
		return nil, fmt.Errorf("process %q: %w", c.Process, err)
	}
	res, err := client.Run(ctx, sdk.RunRequest{
		TaskID: strconv.Itoa(c.TaskID), Attempt: c.Attempt, Process: c.Process, Input: c.Input, Credentials: creds,
		Flow: *spec.Flow, Network: spec.Network, NetworkName: spec.NetworkName,
	})
	if err != nil {
		// The plugin failed (died, timed out): an execution error, so the
		// task is retried, on another robot.
		return nil, fmt.Errorf("process %q: %w", c.Process, err)
	}
	kept := p.keep(c, res.Artifacts)
	if e := res.Error; e != nil {
		msg := e.Message
		if kept != "" {
			msg += " (artefacts: " + kept + ")"
		}
		if e.Class == sdk.ErrorData {
			return nil, fmt.Errorf("%w: %s", ErrData, msg)
		}
		return nil, errors.New(msg)
	}
	out, err := json.Marshal(res.Outputs)
	if err != nil {
		return nil, fmt.Errorf("process %q: outputs: %w", c.Process, err)
	}
	return out, nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// DefaultArtifactRetention is how long artefacts are kept on the robot:
// long enough to look at last week's failures.
const DefaultArtifactRetention = 14 * 24 * time.Hour

// attemptDir is the name keep gives an attempt's directory; PruneArtifacts
// deletes nothing else.
var attemptDir = regexp.MustCompile(`^[0-9]+-[0-9]+$`)

// PruneArtifacts deletes the attempt directories under dir (TASK-ATTEMPT,
// as keep makes them) last changed before cut, and returns how many. Other
// files are left alone: the directory may be shared.
func PruneArtifacts(dir string, cut time.Time) (int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		return 0, fmt.Errorf("prune artefacts: %w", err)
	}
	n := 0
	for _, e := range ents {
		if !e.IsDir() || !attemptDir.MatchString(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil || !info.ModTime().Before(cut) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return n, fmt.Errorf("prune artefacts: %w", err)
		}
		n++
	}
	return n, nil
}

// keep writes artefacts under ArtifactDir/<task>-<attempt>/ and returns
// the directory, or "" when nothing was kept.
func (p *Plugins) keep(c *robotwire.Claim, arts []sdk.Artifact) string {
	if p.ArtifactDir == "" || len(arts) == 0 {
		return ""
	}
	if keep := cmp.Or(p.ArtifactRetention, DefaultArtifactRetention); keep > 0 {
		if n, err := PruneArtifacts(p.ArtifactDir, time.Now().Add(-keep)); err != nil {
			p.log().Warn("cannot prune old artefacts", "err", err)
		} else if n > 0 {
			p.log().Info("old artefacts deleted", "attempts", n, "older_than", keep)
		}
	}
	dir := filepath.Join(p.ArtifactDir, strconv.Itoa(c.TaskID)+"-"+strconv.Itoa(c.Attempt))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		p.log().Warn("cannot keep artefacts", "err", err)
		return ""
	}
	for _, a := range arts {
		name := unsafeName.ReplaceAllString(a.Name, "_")
		if err := os.WriteFile(filepath.Join(dir, name), a.Data, 0o600); err != nil {
			p.log().Warn("cannot keep artefact", "name", name, "err", err)
		}
	}
	return dir
}

// vendorSchema is what vendor plugin typ declares about its configuration.
func (p *Plugins) vendorSchema(ctx context.Context, typ string) []sdk.ConfigAttribute {
	if p.Schema == nil {
		return nil
	}
	return p.Schema(ctx, sdk.KindVendor, typ)
}

func (p *Plugins) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}

func (p *Plugins) vendorJob(ctx context.Context, c *robotwire.Claim, spec *robotwire.ProcessSpec, creds map[string]map[string]string) (json.RawMessage, error) {
	cfg := map[string]string{}
	for k, v := range spec.Vendor {
		cfg[k] = v
	}
	// The vendor's secret comes from the claim's credentials, never from
	// the spec (which travels without secrets): the process lists the
	// vendor's credential (e.g. "uipath/prod") and it is delivered with
	// the claim like any other. Its fields go where the plugin's schema
	// says (sdk.SecretAttribute): a generic "password" to the first
	// Sensitive attribute, a field named like one to that one (which wins),
	// and "username" when the plugin takes one.
	schema := p.vendorSchema(ctx, spec.VendorType)
	for _, f := range creds {
		if v, ok := f["password"]; ok {
			if key, ok := sdk.SecretAttribute(schema, "password"); ok {
				cfg[key] = v
			}
		}
		for _, key := range sdk.SensitiveAttributes(schema) {
			if v, ok := f[key]; ok {
				cfg[key] = v
			}
		}
		if u, ok := f["username"]; ok && slices.ContainsFunc(schema, func(a sdk.ConfigAttribute) bool { return a.Name == "username" }) {
			cfg["username"] = u
		}
	}
	v, err := p.Host.Vendor(ctx, spec.Runner, spec.VendorType, cfg)
	if err != nil {
		return nil, fmt.Errorf("process %q: %w", c.Process, err)
	}
	job, err := v.StartJob(ctx, sdk.StartJobRequest{Package: spec.Package, Input: c.Input, Reference: strconv.Itoa(c.TaskID) + "/" + strconv.Itoa(c.Attempt)})
	if err != nil {
		return nil, fmt.Errorf("process %q: start %s job: %w", c.Process, spec.VendorType, err)
	}
	poll := p.VendorPoll
	if poll <= 0 {
		poll = 5 * time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for !job.State.Terminal() {
		select {
		case <-ctx.Done():
			return nil, p.stopJob(ctx, c, spec, v, job)
		case <-t.C:
		}
		next, err := v.GetJob(ctx, job.ID)
		if err != nil {
			if ctx.Err() != nil {
				// Ended while reading the job: stop it all the same.
				return nil, p.stopJob(ctx, c, spec, v, job)
			}
			if !errors.Is(err, pluginhost.ErrPluginUnavailable) {
				p.log().Warn("reading the vendor job failed; trying again", "job", job.ID, "err", err)
				continue
			}
			return nil, fmt.Errorf("process %q: follow %s job %s: %w", c.Process, spec.VendorType, job.ID, err)
		}
		job = next
	}
	if job.State != sdk.JobSucceeded {
		return nil, fmt.Errorf("process %q: %s job %s ended %s: %s", c.Process, spec.VendorType, job.ID, job.VendorState, job.Info)
	}
	out := map[string]any{"job_id": job.ID, "state": job.VendorState}
	if len(job.Output) > 0 {
		out["output"] = job.Output
	}
	return json.Marshal(out)
}

// stopJob asks the vendor to stop a job whose attempt is over for us
// (ctx ended): an operator stopped the task (the cause is then
// ErrStopRequested), the deadline passed, or the robot is shutting down;
// so that the job does not run on, or twice when the task is retried.
//
// The first call is the vendor's soft stop (UiPath's SoftStop only raises
// a flag the workflow may never check): the job is then read until it
// ends, for up to VendorStopWait, and killed if it has not. The error
// names the job, why it was stopped and whether it actually ended.
func (p *Plugins) stopJob(ctx context.Context, c *robotwire.Claim, spec *robotwire.ProcessSpec, v *pluginhost.VendorClient, job sdk.Job) error {
	wait := p.VendorStopWait
	if wait <= 0 {
		wait = 20 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wait+30*time.Second)
	defer cancel()
	why := context.Cause(ctx)
	if err := v.StopJob(sctx, job.ID, false); err != nil {
		p.log().Warn("could not stop the vendor job", "job", job.ID, "err", err)
		return fmt.Errorf("process %q: %s job %s still %s when the attempt ended (%w); the vendor's stop call failed: %v", c.Process, spec.VendorType, job.ID, job.VendorState, why, err)
	}
	how := "the vendor was asked to stop it"
	if last, ended := p.awaitJobEnd(sctx, v, job, wait); ended {
		how += " and it ended " + last.VendorState
	} else {
		p.log().Warn("the vendor job did not end after the stop; killing it", "job", job.ID, "state", last.VendorState, "waited", wait)
		if err := v.StopJob(sctx, job.ID, true); err != nil {
			how = fmt.Sprintf("%s, it was still %s after %s and the vendor's kill call failed (%v): it may still be running", how, last.VendorState, wait, err)
		} else if last, ended := p.awaitJobEnd(sctx, v, last, 10*time.Second); ended {
			how = fmt.Sprintf("%s, it was still running after %s and was killed (%s)", how, wait, last.VendorState)
		} else {
			how = fmt.Sprintf("%s, then killed after %s, and was still %s: it may still be running", how, wait, last.VendorState)
		}
	}
	if errors.Is(why, ErrStopRequested) {
		return fmt.Errorf("process %q: %s job %s %w: %s", c.Process, spec.VendorType, job.ID, why, how)
	}
	return fmt.Errorf("process %q: %s job %s still %s when the attempt ended: %w; %s", c.Process, spec.VendorType, job.ID, job.VendorState, why, how)
}

// awaitJobEnd reads job until it is in a terminal state, for up to wait;
// it returns the last state read and whether the job ended. A failed read
// counts as not ended.
func (p *Plugins) awaitJobEnd(ctx context.Context, v *pluginhost.VendorClient, job sdk.Job, wait time.Duration) (sdk.Job, bool) {
	poll := min(p.VendorPoll, time.Second)
	if poll <= 0 {
		poll = time.Second
	}
	deadline := time.Now().Add(wait)
	for {
		next, err := v.GetJob(ctx, job.ID)
		if err == nil {
			job = next
			if job.State.Terminal() {
				return job, true
			}
		}
		if time.Until(deadline) <= 0 || !retry.Sleep(ctx, min(poll, time.Until(deadline))) {
			return job, false
		}
	}
}

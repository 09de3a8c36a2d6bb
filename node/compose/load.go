package compose

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// ErrInvalid marks bad input: a file that is not valid Compose, a name that
// cannot be a dropmesh name, a service that makes no valid spec.
var ErrInvalid = raftfsm.ErrInvalid

// Result is what a set of Compose files deploys.
type Result struct {
	// Specs are the services' specs, normalized and validated, in deploy
	// order (every service after the ones it depends on). A built service
	// has Build set to its local context directory: the CLI uploads it and
	// puts the digest in its place before deploying.
	Specs []raftfsm.ServiceSpec
	// Builds maps a (dropmesh) service name to its local build directory.
	Builds map[string]string
	// Warnings name every Compose key or value that dropmesh does not
	// honour, with its service.
	Warnings []string
}

// Load reads the Compose files (the first is the main one; the others
// override it, as `docker compose -f a -f b`), with variables from the
// shell and the main file's .env, and maps them to specs of project and
// env. An empty project takes the Compose project's name; an empty env is
// raftfsm.DefaultEnvironment.
func Load(ctx context.Context, files []string, project, env string) (Result, error) {
	if len(files) == 0 {
		return Result{}, fmt.Errorf("%w: no Compose file given", ErrInvalid)
	}
	if project != "" {
		if err := raftfsm.ValidateSlug("project", project); err != nil {
			return Result{}, err
		}
	}
	if env == "" {
		env = raftfsm.DefaultEnvironment
	}
	if err := raftfsm.ValidateSlug("environment", env); err != nil {
		return Result{}, err
	}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || !st.Mode().IsRegular() {
			return Result{}, fmt.Errorf("%w: compose file %s: not a readable file", ErrInvalid, f)
		}
	}
	var findings []loader.UnsupportedAttribute
	opts := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(filepath.Dir(files[0])),
		cli.WithOsEnv,
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithLoadOptions(loader.WithSupportedAttributes(supported, func(f []loader.UnsupportedAttribute) { findings = f })),
	}
	if project != "" {
		opts = append(opts, cli.WithName(project))
	}
	po, err := cli.NewProjectOptions(files, opts...)
	if err != nil {
		return Result{}, fmt.Errorf("%w: compose %s: %v", ErrInvalid, files[0], err)
	}
	p, err := po.LoadProject(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		return Result{}, fmt.Errorf("%w: compose %s: %v", ErrInvalid, files[0], err)
	}
	if project == "" {
		project = slugify(p.Name)
		if err := raftfsm.ValidateSlug("project", project); err != nil {
			return Result{}, fmt.Errorf("%w: compose project name %q does not make a dropmesh project name; give one (--project)", ErrInvalid, p.Name)
		}
	}
	res := Result{Builds: map[string]string{}, Warnings: findingsToWarnings(findings)}
	m := &mapper{project: project, env: env, p: p, res: &res, names: map[string]string{}}
	if err := m.run(); err != nil {
		return Result{}, err
	}
	return res, nil
}

// slugify turns a Compose name (letters, digits, '-', '_', '.') into a
// dropmesh name: lower case, '_' and '.' become '-'.
func slugify(s string) string {
	return strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(s))
}

// mapper maps one loaded project.
type mapper struct {
	project, env string
	p            *types.Project
	res          *Result
	// names maps Compose service names to dropmesh ones.
	names map[string]string
}

func (m *mapper) warn(format string, args ...any) {
	m.res.Warnings = append(m.res.Warnings, fmt.Sprintf(format, args...))
}

func (m *mapper) run() error {
	for _, name := range slices.Sorted(maps.Keys(m.p.DisabledServices)) {
		m.warn("service %s: only in profile(s) %s, which are not active; not deployed", name, strings.Join(m.p.DisabledServices[name].Profiles, ", "))
	}
	if len(m.p.Services) == 0 {
		return fmt.Errorf("%w: compose: no service to deploy", ErrInvalid)
	}
	owner := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(m.p.Services)) {
		n := slugify(name)
		if err := raftfsm.ValidateSlug("service", n); err != nil {
			return fmt.Errorf("%w: compose service %q cannot be named %q in dropmesh: use 1-32 lowercase letters, digits and '-'", ErrInvalid, name, n)
		}
		if other, dup := owner[n]; dup {
			return fmt.Errorf("%w: compose services %q and %q would both be named %q in dropmesh", ErrInvalid, other, name, n)
		}
		owner[n] = name
		m.names[name] = n
		if n != name {
			m.warn("service %s: deployed as %s (dropmesh names are lower case with '-')", name, n)
		}
	}
	specs := map[string]raftfsm.ServiceSpec{}
	stateful := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(m.p.Services)) {
		spec, err := m.service(m.p.Services[name])
		if err != nil {
			return err
		}
		specs[name] = spec
		stateful[name] = spec.Kind == raftfsm.KindStateful
	}
	// uses: the stateful services each one depends on.
	for _, name := range slices.Sorted(maps.Keys(m.p.Services)) {
		spec := specs[name]
		for _, dep := range slices.Sorted(maps.Keys(m.p.Services[name].DependsOn)) {
			if _, active := m.p.Services[dep]; !active {
				continue
			}
			// Every dependency is deployed first (live, so healthy, before
			// the next) and reachable by name; a stateful one also has
			// its address injected.
			if stateful[dep] {
				spec.Uses = append(spec.Uses, m.names[dep])
			}
			if m.p.Services[name].DependsOn[dep].Condition == types.ServiceConditionCompletedSuccessfully {
				m.warn("service %s: depends_on %s: condition service_completed_successfully is not honoured; %s is deployed first and waited for until it is live", name, dep, dep)
			}
		}
		specs[name] = spec
	}
	order, err := m.order()
	if err != nil {
		return err
	}
	for _, name := range order {
		spec := specs[name]
		if err := validate(spec); err != nil {
			return fmt.Errorf("compose service %s: %w", name, err)
		}
		m.res.Specs = append(m.res.Specs, spec)
	}
	return nil
}

// validate checks a spec as the leader will; a build context is checked as
// the digest the CLI will put in its place.
func validate(spec raftfsm.ServiceSpec) error {
	if spec.Build != "" {
		spec.Build = "sha256:" + strings.Repeat("0", 64)
	}
	return spec.Validate()
}

// order sorts the services so that each comes after its dependencies
// (Compose already refused cycles); ties go by name.
func (m *mapper) order() ([]string, error) {
	indeg := map[string]int{}
	dependents := map[string][]string{}
	for name, svc := range m.p.Services {
		indeg[name] += 0
		for dep := range svc.DependsOn {
			if _, active := m.p.Services[dep]; !active {
				continue
			}
			indeg[name]++
			dependents[dep] = append(dependents[dep], name)
		}
	}
	var ready, out []string
	for name, d := range indeg {
		if d == 0 {
			ready = append(ready, name)
		}
	}
	for len(ready) > 0 {
		slices.Sort(ready)
		name := ready[0]
		ready = ready[1:]
		out = append(out, name)
		for _, d := range dependents[name] {
			if indeg[d]--; indeg[d] == 0 {
				ready = append(ready, d)
			}
		}
	}
	if len(out) != len(indeg) {
		return nil, errors.New("compose: depends_on has a cycle")
	}
	return out, nil
}

// Package compose reads docker-compose files and maps their services to
// dropmesh service specs, for `dropmesh deploy -f compose.yaml`.
//
// Load parses the files with the Compose project's own library
// (compose-spec/compose-go: interpolation from the shell and .env, override
// files merged, env_file read, profiles) and maps each active service:
//
//   - image, or build (a local directory the CLI uploads: Result.Builds);
//   - the first container port of ports (else of expose, else the usual port
//     of a recognised datastore) is the service's port; every further TCP
//     port of ports and expose is declared too (spec ports);
//   - command, entrypoint, user (root refused), working_dir, restart and
//     cap_add (deployed by an admin only);
//   - environment and env_file (variables named like a password, secret,
//     token or key go to secrets, sealed by the leader);
//   - a database or cache (redis, valkey, keydb, postgres, mysql, mariadb,
//     recognised by image) becomes kind stateful with its first volume's path,
//     and its dependents (depends_on) get uses: so its address is injected;
//   - deploy.replicas or scale; deploy.resources.limits, mem_limit and cpus;
//   - healthcheck: a curl or wget of the service's own port on localhost
//     gives health.path (probed from outside); any other CMD or CMD-SHELL
//     test is run inside the container (health.command, Docker exec);
//     interval gives health.interval;
//   - volumes of a stateful service: the first is its volume, the others
//     further node-local named volumes that stay with it on its node;
//   - the label dropmesh.hosts ("a.example.com,b.example.com") gives hosts,
//     and dropmesh.kind overrides the kind.
//
// Nothing is dropped silently: every key dropmesh does not honour is named,
// with its service, in Result.Warnings (compose-go's attribute check, used
// fail-closed: a key not known here is reported). Specs come in deploy
// order, dependencies first.
package compose

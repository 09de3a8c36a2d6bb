package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dropmesh/dropmesh/node/apiclient"
	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// Status is the answer of `dropmesh status --json`.
type Status struct {
	Cluster  control.ClusterInfo `json:"cluster"`
	Nodes    []raftfsm.Node      `json:"nodes"`
	Services []ServiceRow        `json:"services"`
}

// ServiceRow is one service as `services` and `status` show it.
type ServiceRow struct {
	Name       string       `json:"name"`
	Key        string       `json:"key"`
	Kind       raftfsm.Kind `json:"kind"`
	Image      string       `json:"image"`
	Replicas   int          `json:"replicas"`
	Generation int64        `json:"generation"`
	Live       int64        `json:"live_generation"`
	Healthy    int          `json:"healthy"`
	Instances  int          `json:"instances"`
}

// workspaceNames maps workspace ids to names.
func workspaceNames(ctx context.Context, c *apiclient.Client) (map[string]string, error) {
	list, err := c.Workspaces(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, w := range list {
		out[w.ID] = w.Name
	}
	return out, nil
}

// displayName writes a service key as the CLI takes it back.
func displayName(names map[string]string, key string) string {
	ws, rest, ok := strings.Cut(key, "/")
	if !ok {
		return key
	}
	name := names[ws]
	switch name {
	case "":
		return key
	case raftfsm.DefaultWorkspaceName:
		return rest
	}
	return name + "/" + rest
}

// serviceRows summarises services with their instances' health.
func serviceRows(ctx context.Context, c *apiclient.Client, workspace string) ([]ServiceRow, error) {
	names, err := workspaceNames(ctx, c)
	if err != nil {
		return nil, err
	}
	svcs, err := c.Services(ctx, workspace)
	if err != nil {
		return nil, err
	}
	insts, err := c.Instances(ctx, apiclient.InstanceFilter{})
	if err != nil {
		return nil, err
	}
	rows := []ServiceRow{}
	for _, s := range svcs {
		r := ServiceRow{Name: displayName(names, s.Key), Key: s.Key, Kind: s.Spec.Kind, Image: s.Spec.Image, Replicas: s.Spec.Replicas,
			Generation: s.Generation, Live: s.LiveGeneration}
		if r.Image == "" && s.Spec.Build != "" {
			r.Image = "build " + shortDigest(s.Spec.Build)
		}
		for _, in := range insts {
			if in.Service == s.Key {
				r.Instances++
				if in.Health == raftfsm.HealthHealthy {
					r.Healthy++
				}
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	return d[:min(12, len(d))]
}

func (e *env) statusCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the cluster: leader, members, nodes and services",
		Args:  args(cobra.NoArgs),
	}
	cn := e.connFlags(cmd)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := cn.client()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		var st Status
		if st.Cluster, err = c.Cluster(ctx); err != nil {
			return err
		}
		if st.Nodes, err = c.Nodes(ctx); err != nil {
			return err
		}
		if st.Services, err = serviceRows(ctx, c, ""); err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if jsonOut {
			return printJSON(out, st)
		}
		leader := st.Cluster.Leader.ID
		if leader == "" {
			leader = "none (election in progress?)"
		} else {
			leader += " (" + st.Cluster.Leader.API + ")"
		}
		fmt.Fprintf(out, "leader: %s, term %d\n\n", leader, st.Cluster.Term)
		t := newTable(out, "MEMBER", "STATUS", "RAFT", "API", "VERSION")
		for _, m := range st.Cluster.Members {
			t.row(m.ID, m.Status, m.Raft, m.API, m.Version)
		}
		if err := t.flush(); err != nil {
			return err
		}
		healthy := 0
		for _, r := range st.Services {
			if r.Instances > 0 && r.Healthy == r.Instances {
				healthy++
			}
		}
		fmt.Fprintf(out, "\n%d nodes, %d services (%d fully healthy)\n", len(st.Nodes), len(st.Services), healthy)
		return nil
	}
	return cmd
}

func (e *env) nodesCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List the nodes; add, remove or reboot one",
		Args:  noArgs,
	}
	cn := e.connFlags(cmd)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := cn.client()
		if err != nil {
			return err
		}
		nodes, err := c.Nodes(cmd.Context())
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if jsonOut {
			return printJSON(out, nodes)
		}
		now := e.now()
		images := nodeImageBytes(cmd.Context(), c, nodes)
		t := newTable(out, "ID", "STATUS", "REGION", "API", "PUBLIC IP", "PRIVATE IP", "VERSION", "FAILED PINGS", "IMAGES", "JOINED")
		for _, n := range nodes {
			status := string(n.Status)
			if n.StatusReason != "" {
				status += " (" + n.StatusReason + ")"
			}
			// The leader's /ping probes missed in a row: at 5 it power-cycles the droplet.
			pings := strconv.Itoa(n.ConsecutiveFailedPings)
			if n.ConsecutiveFailedPings > 0 && !n.LastSeen.IsZero() {
				pings += " (seen " + ago(now, n.LastSeen) + ")"
			}
			t.row(n.ID, status, n.Region, n.API, n.PublicIP, n.PrivateIP, n.Version, pings, images[n.ID], ago(now, n.JoinedAt))
		}
		return t.flush()
	}

	var count int
	var region, snapshot string
	add := &cobra.Command{
		Use:   "add",
		Short: "Add droplets to the cluster",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if count < 1 {
				return usagef("--count must be at least 1")
			}
			if region != "" {
				if err := raftfsm.ValidateRegion(region); err != nil {
					return &UsageError{Err: err}
				}
			}
			c, err := cn.client()
			if err != nil {
				return err
			}
			ids, err := c.AddNodes(cmd.Context(), control.AddNodesRequest{Count: count, Region: region, Snapshot: snapshot})
			if err != nil {
				return err
			}
			if jsonOut {
				return printJSON(cmd.OutOrStdout(), map[string][]string{"nodes": ids})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "adding %s; the droplets join within minutes (watch: dropmesh nodes)\n", strings.Join(ids, ", "))
			return nil
		},
	}
	add.Flags().IntVar(&count, "count", 1, "how many droplets")
	add.Flags().StringVar(&region, "region", "", "region slug such as fra1 (default: the cluster's first)")
	add.Flags().StringVar(&snapshot, "snapshot", "", "create them from this snapshot (default: the base one)")
	add.Flags().BoolVar(&jsonOut, "json", false, "print JSON")

	nodeAction := func(use, short, done string, do func(c *apiclient.Client, ctx context.Context, id string) error) *cobra.Command {
		return &cobra.Command{
			Use:   use + " ID",
			Short: short,
			Args:  args(cobra.ExactArgs(1)),
			RunE: func(cmd *cobra.Command, a []string) error {
				if err := raftfsm.ValidateNodeID(a[0]); err != nil {
					return &UsageError{Err: err}
				}
				c, err := cn.client()
				if err != nil {
					return err
				}
				if err := do(c, cmd.Context(), a[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", done, a[0])
				return nil
			},
		}
	}
	cmd.AddCommand(add,
		nodeAction("remove", "Drain a node and delete its droplet", "removing", func(c *apiclient.Client, ctx context.Context, id string) error { return c.RemoveNode(ctx, id) }),
		nodeAction("reboot", "Power-cycle a node's droplet", "rebooting", func(c *apiclient.Client, ctx context.Context, id string) error { return c.RebootNode(ctx, id) }),
	)
	return cmd
}

func (e *env) servicesCmd() *cobra.Command {
	var jsonOut bool
	var workspace string
	cmd := &cobra.Command{
		Use:     "services",
		Aliases: []string{"ps"},
		Short:   "List the services and how many instances are healthy",
		Args:    args(cobra.NoArgs),
	}
	cn := e.connFlags(cmd)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	cmd.Flags().StringVarP(&workspace, "workspace", "w", "", "only this workspace")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := cn.client()
		if err != nil {
			return err
		}
		rows, err := serviceRows(cmd.Context(), c, workspace)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if jsonOut {
			return printJSON(out, rows)
		}
		t := newTable(out, "NAME", "KIND", "IMAGE", "HEALTHY", "GENERATION")
		for _, r := range rows {
			gen := strconv.FormatInt(r.Generation, 10)
			if r.Live != r.Generation {
				gen += fmt.Sprintf(" (live %d)", r.Live)
			}
			t.row(r.Name, string(r.Kind), r.Image, fmt.Sprintf("%d/%d", r.Healthy, r.Instances), gen)
		}
		return t.flush()
	}
	return cmd
}

func (e *env) workspacesCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "workspaces",
		Short: "List the workspaces; create or delete one",
		Args:  noArgs,
	}
	cn := e.connFlags(cmd)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := cn.client()
		if err != nil {
			return err
		}
		list, err := c.Workspaces(cmd.Context())
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if jsonOut {
			return printJSON(out, list)
		}
		t := newTable(out, "ID", "NAME", "PROJECTS", "SERVICES")
		for _, w := range list {
			var projects []string
			for _, p := range w.Projects {
				projects = append(projects, p.Name+" ("+strings.Join(p.Envs, ", ")+")")
			}
			t.row(w.ID, w.Name, strings.Join(projects, "; "), strconv.Itoa(w.Services))
		}
		return t.flush()
	}
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a workspace",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := raftfsm.ValidateSlug("workspace", a[0]); err != nil {
				return &UsageError{Err: err}
			}
			c, err := cn.client()
			if err != nil {
				return err
			}
			w, err := c.CreateWorkspace(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created workspace %s (%s)\n", w.Name, w.ID)
			return nil
		},
	}
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete an empty workspace",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := cn.client()
			if err != nil {
				return err
			}
			if err := c.DeleteWorkspace(cmd.Context(), a[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted workspace %s\n", a[0])
			return nil
		},
	}
	cmd.AddCommand(create, del)
	return cmd
}

package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dropmesh/dropmesh/raftfsm"
)

// maxPEMFile bounds a certificate or key file read by `certs put`.
const maxPEMFile = 1 << 20

func (e *env) certsCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "List the edge's TLS certificates (origin certificates, by zone); add or remove one",
		Long: "List the edge's TLS certificates; add or remove one.\n\n" +
			"With a zone's certificate stored (a Cloudflare origin certificate, say), every\n" +
			"droplet's edge serves the zone's hosts over TLS on its TLS port (443 on a droplet),\n" +
			"so Cloudflare can reach the origin in Full (strict) mode. The key is sealed before\n" +
			"it enters the replicated state and is never shown again.",
		Args: noArgs,
	}
	cn := e.connFlags(cmd)
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := cn.client()
		if err != nil {
			return err
		}
		certs, err := c.OriginCerts(cmd.Context())
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if jsonOut {
			return printJSON(out, certs)
		}
		t := newTable(out, "ZONE", "NAMES", "EXPIRES", "UPDATED")
		for _, oc := range certs {
			t.row(oc.Zone, strings.Join(oc.Names, ","), oc.NotAfter.Format(time.DateOnly), ago(e.now(), oc.UpdatedAt))
		}
		return t.flush()
	}

	var certFile, keyFile string
	put := &cobra.Command{
		Use:   "put ZONE --cert FILE --key FILE",
		Short: "Store a zone's certificate chain (PEM, leaf first) and private key (PEM)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			zone := a[0]
			if err := raftfsm.ValidateHostname(zone, false); err != nil {
				return &UsageError{Err: fmt.Errorf("zone: %w", err)}
			}
			if certFile == "" || keyFile == "" {
				return usagef("both --cert and --key are needed")
			}
			certPEM, err := e.readInput(certFile, maxPEMFile)
			if err != nil {
				return err
			}
			keyPEM, err := e.readInput(keyFile, maxPEMFile)
			if err != nil {
				return err
			}
			c, err := cn.client()
			if err != nil {
				return err
			}
			if err := c.PutOriginCert(cmd.Context(), zone, string(certPEM), string(keyPEM)); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stored the certificate of %s; every edge serves it on its TLS port\n", zone)
			return nil
		},
	}
	put.Flags().StringVar(&certFile, "cert", "", "the certificate chain, PEM (- for standard input)")
	put.Flags().StringVar(&keyFile, "key", "", "the private key, PEM (- for standard input)")

	remove := &cobra.Command{
		Use:   "remove ZONE",
		Short: "Remove a zone's certificate: its hosts are served over plain HTTP only",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := raftfsm.ValidateHostname(a[0], false); err != nil {
				return &UsageError{Err: fmt.Errorf("zone: %w", err)}
			}
			c, err := cn.client()
			if err != nil {
				return err
			}
			if err := c.DeleteOriginCert(cmd.Context(), a[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed the certificate of %s\n", a[0])
			return nil
		},
	}
	cmd.AddCommand(put, remove)
	return cmd
}

package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dropmesh/dropmesh/node/control"
	"github.com/dropmesh/dropmesh/raftfsm"
)

// maxPEMFile bounds a certificate or key file read by `certs put`.
const maxPEMFile = 1 << 20

func (e *env) certsCmd() *cobra.Command {
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "List the edge's TLS certificates (issued by ACME and uploaded); choose the ACME CA; add or remove one",
		Long: "List the edge's TLS certificates, issued and uploaded, with expiry and status;\n" +
			"choose the ACME CA (certs acme); add or remove an uploaded one.\n\n" +
			"With automatic HTTPS on (certs acme --enable), the leader obtains a certificate for\n" +
			"every service's hosts through DNS-01 and renews it 30 days before expiry; every edge\n" +
			"serves it. An uploaded certificate wins over an issued one for the hosts it covers.\n\n" +
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
		info, err := c.Certs(cmd.Context())
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if jsonOut {
			return printJSON(out, info)
		}
		if info.ACME.Enabled {
			fmt.Fprintf(out, "ACME: %s (renewal %s before expiry)\n", info.ACME.Directory, info.ACME.RenewBefore)
		} else {
			fmt.Fprintln(out, "ACME: off (dropmesh certs acme --enable to turn automatic HTTPS on)")
		}
		t := newTable(out, "NAME", "SOURCE", "HOSTS", "STATUS", "EXPIRES", "NOTE")
		for _, ci := range info.Certs {
			expires := "-"
			if ci.NotAfter != nil {
				expires = ci.NotAfter.Format(time.DateTime)
			}
			note := ci.LastError
			if ci.NextAttempt != nil {
				note = fmt.Sprintf("retry %s: %s", ci.NextAttempt.Format(time.DateTime), ci.LastError)
			}
			if len(note) > 80 {
				note = note[:77] + "..."
			}
			t.row(ci.Name, ci.Source, strings.Join(ci.Hosts, ","), ci.Status, expires, note)
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
	cmd.AddCommand(put, remove, e.certsACMECmd())
	return cmd
}

// certsACMECmd is `dropmesh certs acme`: the CA of automatic HTTPS.
func (e *env) certsACMECmd() *cobra.Command {
	var (
		enable, disable, staging bool
		directory, caFile, email string
		renewBefore              time.Duration
		resolvers                []string
	)
	cmd := &cobra.Command{
		Use:   "acme (--enable [--staging | --directory URL] [--email E] | --disable)",
		Short: "Turn automatic HTTPS (ACME DNS-01, Let's Encrypt by default) on or off, or choose the CA",
		Long: "Turn automatic HTTPS on or off. The leader then orders a certificate for every\n" +
			"service's hosts from the CA (Let's Encrypt; --staging for its staging CA, or any\n" +
			"ACME directory URL), proving control with a DNS-01 TXT record written through the\n" +
			"cluster's Cloudflare token, and renews it 30 days before expiry (--renew-before).",
		Args: noArgs,
	}
	cn := e.connFlags(cmd)
	cmd.Flags().BoolVar(&enable, "enable", false, "turn automatic HTTPS on")
	cmd.Flags().BoolVar(&disable, "disable", false, "turn it off (issued certificates stay served until their services go)")
	cmd.Flags().BoolVar(&staging, "staging", false, "use Let's Encrypt's staging CA (untrusted certificates, generous limits)")
	cmd.Flags().StringVar(&directory, "directory", "", "an ACME directory URL (https) instead of Let's Encrypt")
	cmd.Flags().StringVar(&caFile, "directory-ca", "", "PEM file of a root to trust for the directory's HTTPS (a private CA)")
	cmd.Flags().StringVar(&email, "email", "", "the account's contact address (expiry warnings from the CA)")
	cmd.Flags().DurationVar(&renewBefore, "renew-before", 0, "renew this long before expiry (default 720h)")
	cmd.Flags().StringSliceVar(&resolvers, "resolver", nil, "DNS server ip:port to check challenge records at (default: the zone's name servers)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if enable == disable {
			return usagef("give --enable or --disable")
		}
		req := control.ACMERequest{Enabled: enable, Directory: directory, Staging: staging, Email: email, Resolvers: resolvers}
		if renewBefore < 0 {
			return usagef("--renew-before must not be negative")
		}
		if renewBefore > 0 {
			d := raftfsm.Duration(renewBefore)
			req.RenewBefore = &d
		}
		if caFile != "" {
			b, err := e.readInput(caFile, maxPEMFile)
			if err != nil {
				return err
			}
			req.DirectoryCA = string(b)
		}
		if _, err := req.Config(); err != nil {
			return &UsageError{Err: err}
		}
		c, err := cn.client()
		if err != nil {
			return err
		}
		if err := c.SetACME(cmd.Context(), req); err != nil {
			return err
		}
		if enable {
			fmt.Fprintln(cmd.OutOrStdout(), "automatic HTTPS is on; `dropmesh certs` shows the certificates as they are issued")
		} else {
			fmt.Fprintln(cmd.OutOrStdout(), "automatic HTTPS is off")
		}
		return nil
	}
	return cmd
}

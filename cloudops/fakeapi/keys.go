package fakeapi

import (
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/digitalocean/godo"
	"golang.org/x/crypto/ssh"
)

// keyByRefLocked finds a key by id or fingerprint.
func (s *Server) keyByRefLocked(ref string) *godo.Key {
	if id, err := strconv.Atoi(ref); err == nil {
		return s.st.Keys[id]
	}
	for _, k := range s.st.Keys {
		if k.Fingerprint == ref {
			return k
		}
	}
	return nil
}

func (s *Server) sortedKeys() []godo.Key {
	out := make([]godo.Key, 0, len(s.st.Keys))
	for _, k := range s.st.Keys {
		out = append(out, *k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	all := s.sortedKeys()
	s.mu.Unlock()
	page, links, meta, ok := doPage(w, r, all)
	if ok {
		writeJSON(w, http.StatusOK, map[string]any{"ssh_keys": page, "links": links, "meta": meta})
	}
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	var req godo.KeyCreateRequest
	if err := decode(r, &req); err != nil {
		doError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(req.PublicKey))
	if err != nil || strings.TrimSpace(req.Name) == "" {
		doError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "Key invalid, type not allowed or name missing.")
		return
	}
	fp := ssh.FingerprintLegacyMD5(pub)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.st.Keys {
		if k.Fingerprint == fp {
			doError(w, http.StatusUnprocessableEntity, "unprocessable_entity", "SSH Key is already in use on your account")
			return
		}
	}
	s.st.Seq.Key++
	k := &godo.Key{ID: keyIDBase + s.st.Seq.Key, Name: req.Name, Fingerprint: fp, PublicKey: strings.TrimSpace(req.PublicKey)}
	s.st.Keys[k.ID] = k
	s.changed()
	s.log.Info("ssh key created", "id", k.ID, "name", k.Name)
	writeJSON(w, http.StatusCreated, map[string]any{"ssh_key": k})
}

func (s *Server) getKey(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keyByRefLocked(r.PathValue("id"))
	if k == nil {
		doError(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ssh_key": k})
}

func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keyByRefLocked(r.PathValue("id"))
	if k == nil {
		doError(w, http.StatusNotFound, "not_found", "The resource you were accessing could not be found.")
		return
	}
	delete(s.st.Keys, k.ID)
	s.changed()
	s.log.Info("ssh key deleted", "id", k.ID, "name", k.Name)
	w.WriteHeader(http.StatusNoContent)
}

// go-tlog-verify checks a Sealwright transparency log served over HTTPS with Go's own
// golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog (Debian's
// golang-golang-x-mod-dev), as the independent second implementation the tests compare
// against:
//
//   - the checkpoint is a signed note that note.Open verifies with the log's verifier key;
//   - every hash tile it reads is authenticated against the checkpoint's root by
//     tlog.TileHashReader;
//   - every entry of every entry bundle has an inclusion proof (tlog.ProveRecord) that
//     tlog.CheckRecord accepts;
//   - with -old-checkpoint, the tree is consistent with that older checkpoint
//     (tlog.ProveTree, tlog.CheckTree).
//
// It prints one JSON line and exits 0 only when every check passed.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const tileHeight = 8

func fail(format string, args ...interface{}) {
	out, _ := json.Marshal(map[string]interface{}{"ok": false, "error": fmt.Sprintf(format, args...)})
	fmt.Println(string(out))
	os.Exit(1)
}

type fetcher struct {
	base   string
	client *http.Client
}

func (f *fetcher) get(path string) ([]byte, error) {
	resp, err := f.client.Get(f.base + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<24))
}

// c2sp.org/tlog-tiles names tiles as Go's sumdb does, without the height element.
type tileReader struct{ f *fetcher }

func (r tileReader) Height() int { return tileHeight }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		path := strings.Replace(t.Path(), fmt.Sprintf("tile/%d/", tileHeight), "tile/", 1)
		data, err := r.f.get(path)
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (r tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// checkpoint verifies a checkpoint note with the log key and returns its tree.
func checkpoint(msg []byte, verifier note.Verifier) tlog.Tree {
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		fail("checkpoint: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[0] != verifier.Name() {
		fail("checkpoint: origin is not %q", verifier.Name())
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 {
		fail("checkpoint: bad size %q", lines[1])
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		fail("checkpoint: bad root: %v", err)
	}
	return tlog.Tree{N: size, Hash: root}
}

// entriesPath is the c2sp.org/tlog-tiles path of entry bundle n holding width entries.
func entriesPath(n, width int64) string {
	t := tlog.Tile{H: tileHeight, L: 0, N: n, W: int(width)}
	return strings.Replace(t.Path(), fmt.Sprintf("tile/%d/0/", tileHeight), "tile/entries/", 1)
}

func main() {
	base := flag.String("tiles", "", "the log's URL prefix, ending in /")
	vkey := flag.String("log-key", "", "the log's verifier key")
	caFile := flag.String("ca", "", "PEM certificate authority of the HTTPS server")
	old := flag.String("old-checkpoint", "", "an earlier checkpoint note the log must extend")
	flag.Parse()

	pool := x509.NewCertPool()
	pem, err := os.ReadFile(*caFile)
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		fail("reading the CA %s: %v", *caFile, err)
	}
	f := &fetcher{base: *base, client: &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}}}
	verifier, err := note.NewVerifier(*vkey)
	if err != nil {
		fail("log key: %v", err)
	}
	msg, err := f.get("checkpoint")
	if err != nil {
		fail("%v", err)
	}
	tree := checkpoint(msg, verifier)
	reader := tlog.TileHashReader(tree, tileReader{f})

	verified := int64(0)
	for bundle := int64(0); bundle*256 < tree.N; bundle++ {
		width := tree.N - bundle*256
		if width > 256 {
			width = 256
		}
		data, err := f.get(entriesPath(bundle, width))
		if err != nil {
			fail("%v", err)
		}
		for k := int64(0); k < width; k++ {
			if len(data) < 2 {
				fail("entry bundle %d ends after %d entries", bundle, k)
			}
			length := int(binary.BigEndian.Uint16(data))
			if len(data) < 2+length {
				fail("entry bundle %d: entry %d is cut", bundle, k)
			}
			entry := data[2 : 2+length]
			data = data[2+length:]
			index := bundle*256 + k
			proof, err := tlog.ProveRecord(tree.N, index, reader)
			if err != nil {
				fail("proving entry %d: %v", index, err)
			}
			if err := tlog.CheckRecord(proof, tree.N, tree.Hash, index, tlog.RecordHash(entry)); err != nil {
				fail("entry %d: %v", index, err)
			}
			verified++
		}
		if len(data) != 0 {
			fail("entry bundle %d has bytes after its %d entries", bundle, width)
		}
	}

	result := map[string]interface{}{"ok": true, "size": tree.N, "entries_verified": verified}
	if *old != "" {
		msg, err := os.ReadFile(*old)
		if err != nil {
			fail("%v", err)
		}
		earlier := checkpoint(msg, verifier)
		proof, err := tlog.ProveTree(tree.N, earlier.N, reader)
		if err != nil {
			fail("proving consistency from %d: %v", earlier.N, err)
		}
		if err := tlog.CheckTree(proof, tree.N, tree.Hash, earlier.N, earlier.Hash); err != nil {
			fail("not consistent with the checkpoint of size %d: %v", earlier.N, err)
		}
		result["consistent_from"] = earlier.N
	}
	out, _ := json.Marshal(result)
	fmt.Println(string(out))
}

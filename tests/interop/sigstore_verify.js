// Verifies a keyed Sigstore bundle (v0.3, DSSE, no transparency log) with Sigstore's own
// JavaScript verifier, @sigstore/verify, offline: an empty trusted root, the public key
// given by its cosign hint, no tlog/ctlog/timestamp required
// (crates/cli/tests/build.rs). Prints OK; throws (non-zero exit) on any failure.
//
// usage: NODE_PATH=.node-tools/node_modules node sigstore_verify.js BUNDLE.json KEY.spki.der
const fs = require('fs');
const crypto = require('crypto');
const { bundleFromJSON } = require('@sigstore/bundle');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');
const { TrustedRoot } = require('@sigstore/protobuf-specs');

const [bundlePath, keyPath] = process.argv.slice(2);
const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, 'utf8')));
const spki = fs.readFileSync(keyPath);
const hint = crypto.createHash('sha256').update(spki).digest('base64');
const root = TrustedRoot.fromJSON({
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [],
});
const verifier = new Verifier(toTrustMaterial(root, { [hint]: { rawBytes: spki } }),
  { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
verifier.verify(toSignedEntity(bundle));
console.log('OK');

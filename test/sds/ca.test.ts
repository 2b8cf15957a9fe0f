// Unit tests of the mesh CA: roots, workload certificates, SPIFFE SANs.
// (How long issuing holds the event loop is measured by `npm run bench`.)
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { MeshCa, spiffeId } from '../../src/sds/ca';

describe('sds: mesh CA', function () {
  this.timeout(30_000);
  let ca: MeshCa;
  const now = new Date();

  before(async () => {
    ca = await MeshCa.generate('mesh.local', now);
  });

  it('generates a self-signed root CA', () => {
    const root = new crypto.X509Certificate(ca.rootPem);
    assert.equal(root.ca, true);
    assert.ok(root.verify(root.publicKey));
    assert.match(root.subject, /meshplane root CA/);
  });

  it('issues a workload certificate with the service’s SPIFFE id, signed by the root, valid for the TTL', async () => {
    const w = await ca.issue('reviews', 'mesh.local', 20_000, now);
    const cert = new crypto.X509Certificate(w.certPem);
    const root = new crypto.X509Certificate(ca.rootPem);
    assert.ok(cert.checkIssued(root));
    assert.ok(cert.verify(root.publicKey));
    assert.equal(cert.ca, false);
    assert.equal(cert.subjectAltName, `URI:${spiffeId('mesh.local', 'reviews')}`);
    assert.equal(w.spiffeId, 'spiffe://mesh.local/service/reviews');
    assert.ok(cert.checkPrivateKey(crypto.createPrivateKey(w.keyPem)));
    assert.equal(cert.publicKey.asymmetricKeyType, 'ec', 'workload keys are ECDSA P-256');
    assert.equal(new Date(cert.validTo).getTime(), Math.floor((now.getTime() + 20_000) / 1000) * 1000);
    assert.ok(new Date(cert.validFrom) <= now);
    assert.equal(cert.serialNumber.toLowerCase(), w.serial.toLowerCase());
    assert.deepEqual(cert.keyUsage?.sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  });

  it('gives every certificate a new serial and key', async () => {
    const [a, b] = await Promise.all([
      ca.issue('x', 'mesh.local', 60_000, now),
      ca.issue('x', 'mesh.local', 60_000, now),
    ]);
    assert.notEqual(a.serial, b.serial);
    assert.notEqual(a.keyPem, b.keyPem);
  });

  it('loads a stored root and refuses a key that does not match', async () => {
    const again = MeshCa.load(ca.material);
    const w = await again.issue('y', 'mesh.local', 60_000, now);
    assert.ok(new crypto.X509Certificate(w.certPem).verify(new crypto.X509Certificate(ca.rootPem).publicKey));
    const other = await MeshCa.generate('mesh.local', now);
    assert.throws(
      () => MeshCa.load({ certPem: ca.rootPem, keyPem: other.material.keyPem }),
      /does not match/,
    );
  });
});

// The mesh certificate authority: a root (RSA, generated or loaded from PEM) and
// per-service workload certificates (ECDSA P-256) whose URI SAN is the service's
// SPIFFE id. Keys are generated and certificates signed by Node's native crypto,
// so issuing never blocks the event loop for long; node-forge only assembles the
// X.509 structures.
import crypto from 'node:crypto';
import forge from 'node-forge';

/** spiffe://<trustDomain>/service/<name> */
export function spiffeId(trustDomain: string, service: string): string {
  return `spiffe://${trustDomain}/service/${service}`;
}

export interface CaMaterial {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface WorkloadCertificate {
  readonly service: string;
  readonly spiffeId: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** Hex, as Envoy's /certs shows it. */
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

const generateKeyPair = (bits: number) =>
  new Promise<{ publicKey: string; privateKey: string }>((resolve, reject) =>
    crypto.generateKeyPair(
      'rsa',
      {
        modulusLength: bits,
        publicKeyEncoding: { type: 'spki', format: 'pem' },
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      },
      (err, publicKey, privateKey) => (err ? reject(err) : resolve({ publicKey, privateKey })),
    ),
  );

/** ECDSA P-256: the subject key as DER SubjectPublicKeyInfo, the private key as PKCS#8 PEM. */
const generateEcKeyPair = () =>
  new Promise<{ publicKey: Buffer; privateKey: string }>((resolve, reject) =>
    crypto.generateKeyPair(
      'ec',
      {
        namedCurve: 'prime256v1',
        publicKeyEncoding: { type: 'spki', format: 'der' },
        privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      },
      (err, publicKey, privateKey) => (err ? reject(err) : resolve({ publicKey, privateKey })),
    ),
  );

// DER DigestInfo prefix for SHA-256 (RFC 8017 9.2 note 1): PKCS#1 v1.5 = privateEncrypt(prefix || digest).
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/** A forge "private key" whose sign() runs natively. */
function nativeSigner(keyPem: string): forge.pki.rsa.PrivateKey {
  return {
    sign(md: forge.md.MessageDigest) {
      const digest = Buffer.from(md.digest().getBytes(), 'binary');
      const sig = crypto.privateEncrypt(
        { key: keyPem, padding: crypto.constants.RSA_PKCS1_PADDING },
        Buffer.concat([SHA256_DIGEST_INFO, digest]),
      );
      return sig.toString('binary');
    },
  } as unknown as forge.pki.rsa.PrivateKey;
}

function randomSerial(): string {
  const b = crypto.randomBytes(16);
  b[0] &= 0x7f; // positive
  if (b[0] === 0) b[0] = 1; // no leading zero byte
  return b.toString('hex');
}

export class MeshCa {
  private readonly cert: forge.pki.Certificate;

  /** The CA key, parsed once; and the authority key identifier every workload certificate carries. */
  private readonly key: crypto.KeyObject;
  private readonly keyIdentifier: string;

  private constructor(readonly material: CaMaterial) {
    this.cert = forge.pki.certificateFromPem(material.certPem);
    this.key = crypto.createPrivateKey(material.keyPem);
    this.keyIdentifier = this.cert.generateSubjectKeyIdentifier().getBytes();
  }

  /** Loads a root from PEM (operator-provided or stored); checks that key and certificate belong together. */
  static load(material: CaMaterial): MeshCa {
    const ca = new MeshCa(material);
    const x509 = new crypto.X509Certificate(material.certPem);
    if (!x509.ca) throw new Error('the CA certificate is not a CA (basicConstraints cA is false)');
    if (!x509.checkPrivateKey(crypto.createPrivateKey(material.keyPem))) {
      throw new Error('the CA key does not match the CA certificate');
    }
    return ca;
  }

  /** A new self-signed root for the trust domain. */
  static async generate(trustDomain: string, now: Date, validityDays = 3650): Promise<MeshCa> {
    const { publicKey, privateKey } = await generateKeyPair(2048);
    const cert = forge.pki.createCertificate();
    cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
    cert.serialNumber = randomSerial();
    cert.validity.notBefore = new Date(now.getTime() - 60_000);
    cert.validity.notAfter = new Date(now.getTime() + validityDays * 86_400_000);
    const subject = [
      { name: 'organizationName', value: 'meshplane' },
      { name: 'commonName', value: `meshplane root CA (${trustDomain})` },
    ];
    cert.setSubject(subject);
    cert.setIssuer(subject);
    cert.setExtensions([
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      { name: 'subjectKeyIdentifier' },
      { name: 'subjectAltName', altNames: [{ type: 6, value: `spiffe://${trustDomain}` }] },
    ]);
    cert.sign(nativeSigner(privateKey), forge.md.sha256.create());
    return new MeshCa({ certPem: forge.pki.certificateToPem(cert), keyPem: privateKey });
  }

  get rootPem(): string {
    return this.material.certPem;
  }

  get notAfter(): Date {
    return this.cert.validity.notAfter;
  }

  /** Issues a workload certificate for a service, valid from now (minus skew) for ttlMs. */
  /**
   * Issues a workload certificate for a service, valid from now (minus skew) for
   * ttlMs. The workload key is ECDSA P-256 (generated natively in about a
   * millisecond, where RSA takes hundreds): node-forge builds the X.509 fields
   * around the CA's own public key, then the subject key is swapped for the EC
   * key and the certificate is signed natively by the CA.
   */
  async issue(service: string, trustDomain: string, ttlMs: number, now: Date): Promise<WorkloadCertificate> {
    const { publicKey, privateKey } = await generateEcKeyPair();
    const id = spiffeId(trustDomain, service);
    const cert = forge.pki.createCertificate();
    cert.publicKey = this.cert.publicKey; // placeholder: replaced below by the EC key
    cert.serialNumber = randomSerial();
    // A little backdating absorbs clock skew between hosts.
    cert.validity.notBefore = new Date(now.getTime() - Math.min(60_000, ttlMs / 10));
    cert.validity.notAfter = new Date(now.getTime() + ttlMs);
    cert.setSubject([
      { name: 'organizationName', value: 'meshplane' },
      { name: 'commonName', value: service },
    ]);
    cert.setIssuer(this.cert.subject.attributes);
    cert.setExtensions([
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 6, value: id }], critical: true },
      { name: 'authorityKeyIdentifier', keyIdentifier: this.keyIdentifier },
    ]);
    cert.signatureOid = forge.pki.oids.sha256WithRSAEncryption;
    cert.siginfo.algorithmOid = forge.pki.oids.sha256WithRSAEncryption;
    const tbs = (
      forge.pki as unknown as { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }
    ).getTBSCertificate(cert);
    // TBSCertificate: [0] version, serial, signature, issuer, validity, subject, subjectPublicKeyInfo, [3] extensions.
    (tbs.value as forge.asn1.Asn1[])[6] = forge.asn1.fromDer(publicKey.toString('binary'));
    const tbsDer = Buffer.from(forge.asn1.toDer(tbs).getBytes(), 'binary');
    // Signed in libuv's pool: a storm of new services does not stall the event loop.
    const signature = await new Promise<Buffer>((resolve, reject) =>
      crypto.sign('sha256', tbsDer, this.key, (err, sig) => (err ? reject(err) : resolve(sig))),
    );
    const { asn1 } = forge;
    const certificate = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
      tbs,
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
        asn1.create(
          asn1.Class.UNIVERSAL,
          asn1.Type.OID,
          false,
          asn1.oidToDer(forge.pki.oids.sha256WithRSAEncryption).getBytes(),
        ),
        asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, ''),
      ]),
      asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, `\u0000${signature.toString('binary')}`),
    ]);
    const certPem = forge.pem.encode({ type: 'CERTIFICATE', body: asn1.toDer(certificate).getBytes() });
    return {
      service,
      spiffeId: id,
      certPem,
      keyPem: privateKey,
      serial: cert.serialNumber,
      notBefore: cert.validity.notBefore,
      notAfter: cert.validity.notAfter,
    };
  }
}

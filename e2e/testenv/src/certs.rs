//! A throw-away PKI: one CA, a serving cert for 127.0.0.1/localhost, an admin client cert in
//! `system:masters`, and a service-account signing key. All keys are ECDSA P-256 (fast to
//! generate, accepted by kube-apiserver for TLS and for ES256 service-account tokens).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// PEM material, also written to files in the PKI directory.
pub(crate) struct Pki {
    pub ca_pem: String,
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
    pub ca_file: PathBuf,
    pub serving_cert_file: PathBuf,
    pub serving_key_file: PathBuf,
    pub sa_key_file: PathBuf,
    pub sa_pub_file: PathBuf,
}

/// The user name of the admin client certificate.
pub const ADMIN_USER: &str = "switchyard-testenv-admin";

pub(crate) fn generate(dir: &Path) -> Result<Pki> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    let ca_key = KeyPair::generate().context("generating CA key")?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = dn(&[(DnType::CommonName, "switchyard-testenv-ca")]);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca_params.self_signed(&ca_key).context("self-signing CA")?;
    let issuer = Issuer::new(ca_params, &ca_key);

    let serving_key = KeyPair::generate().context("generating serving key")?;
    let mut serving =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).context("serving cert SANs")?;
    serving.distinguished_name = dn(&[(DnType::CommonName, "switchyard-testenv-apiserver")]);
    serving.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    serving.use_authority_key_identifier_extension = true;
    let serving_cert = serving.signed_by(&serving_key, &issuer).context("signing serving cert")?;

    let admin_key = KeyPair::generate().context("generating admin key")?;
    let mut admin = CertificateParams::default();
    admin.distinguished_name = dn(&[(DnType::CommonName, ADMIN_USER), (DnType::OrganizationName, "system:masters")]);
    admin.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    admin.use_authority_key_identifier_extension = true;
    let admin_cert = admin.signed_by(&admin_key, &issuer).context("signing admin cert")?;

    let sa_key = KeyPair::generate().context("generating service-account key")?;

    let pki = Pki {
        ca_pem: ca_cert.pem(),
        admin_cert_pem: admin_cert.pem(),
        admin_key_pem: admin_key.serialize_pem(),
        ca_file: dir.join("ca.crt"),
        serving_cert_file: dir.join("apiserver.crt"),
        serving_key_file: dir.join("apiserver.key"),
        sa_key_file: dir.join("sa.key"),
        sa_pub_file: dir.join("sa.pub"),
    };
    write(&pki.ca_file, &pki.ca_pem)?;
    write(&pki.serving_cert_file, &serving_cert.pem())?;
    write(&pki.serving_key_file, &serving_key.serialize_pem())?;
    write(&dir.join("admin.crt"), &pki.admin_cert_pem)?;
    write(&dir.join("admin.key"), &pki.admin_key_pem)?;
    write(&pki.sa_key_file, &sa_key.serialize_pem())?;
    write(&pki.sa_pub_file, &sa_key.public_key_pem())?;
    Ok(pki)
}

fn dn(parts: &[(DnType, &str)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (t, v) in parts {
        dn.push(t.clone(), *v);
    }
    dn
}

fn write(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

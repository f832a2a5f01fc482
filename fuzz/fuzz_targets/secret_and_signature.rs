//! `EndpointSecret::parse` on arbitrary text (secrets arrive in API bodies), then signing
//! checked against reference implementations: the Standard Webhooks crate for `whsec_`
//! HMAC secrets, ed25519-dalek's verifier for `whsk_` keys.
#![no_main]

use arbitrary::Arbitrary;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use herald_core::signing::{signature_header, EndpointSecret};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    /// Raw text; or, as `form` says, a prefix and the base64 of `key`, so that valid
    /// secrets are common rather than a lucky find.
    text: &'a str,
    form: Form,
    key: Vec<u8>,
    other_secret: &'a str,
    msg_id: &'a str,
    timestamp: i64,
    body: &'a str,
}

#[derive(Debug, Arbitrary)]
enum Form {
    Raw,
    Hmac,
    Ed25519,
}

fuzz_target!(|input: Input<'_>| {
    let text = match input.form {
        Form::Raw => input.text.to_owned(),
        Form::Hmac => format!("whsec_{}", BASE64.encode(&input.key)),
        Form::Ed25519 => format!("whsk_{}", BASE64.encode(&input.key)),
    };
    let Ok(secret) = EndpointSecret::parse(&text) else {
        return;
    };
    assert_eq!(
        EndpointSecret::parse(&secret.expose()).as_ref(),
        Ok(&secret)
    );
    let signature = secret.sign(input.msg_id, input.timestamp, input.body.as_bytes());
    match &secret {
        EndpointSecret::Hmac(_) => check_hmac(&input, &text, &secret, &signature),
        EndpointSecret::Ed25519(_) => check_ed25519(&input, &text, &secret, &signature),
    }
    assert!(!signature.contains(' '), "a space would split the header");

    // During a rotation the header carries one signature per secret, in order.
    let other = EndpointSecret::parse(input.other_secret).ok();
    let secrets: Vec<&EndpointSecret> = std::iter::once(&secret).chain(other.as_ref()).collect();
    let (id, ts, body) = (input.msg_id, input.timestamp, input.body.as_bytes());
    let header = signature_header(secrets.iter().copied(), id, ts, body);
    let expected: Vec<String> = secrets.iter().map(|s| s.sign(id, ts, body)).collect();
    assert_eq!(header, expected.join(" "));
});

fn check_hmac(input: &Input<'_>, text: &str, secret: &EndpointSecret, signature: &str) {
    let key = text
        .strip_prefix("whsec_")
        .expect("accepted without the prefix");
    let len = BASE64.decode(key).expect("accepted bad base64").len();
    assert!((24..=64).contains(&len), "accepted a {len}-byte key");
    // Decoding demands canonical base64, so the owner gets back exactly what they gave.
    assert_eq!(secret.expose(), text);
    assert_eq!(secret.verification_key(), text);

    let encoded = signature.strip_prefix("v1,").expect("missing `v1,`");
    assert_eq!(BASE64.decode(encoded).expect("not base64").len(), 32);
    // Receivers verify with a Standard Webhooks library: we must sign exactly as it does.
    let reference = standardwebhooks::Webhook::new(text).expect("reference refuses the key");
    let expected = reference
        .sign(input.msg_id, input.timestamp, input.body.as_bytes())
        .expect("reference refuses a UTF-8 body");
    assert_eq!(signature, expected);
}

fn check_ed25519(input: &Input<'_>, text: &str, secret: &EndpointSecret, signature: &str) {
    let key = text
        .strip_prefix("whsk_")
        .expect("accepted without the prefix");
    let len = BASE64.decode(key).expect("accepted bad base64").len();
    assert!(len == 32 || len == 64, "accepted a {len}-byte key");
    assert!(secret.expose().starts_with("whsk_"));

    // What the owner hands to receivers must verify what we send, and not be the secret.
    let public = secret.verification_key();
    assert_ne!(public[5..], secret.expose()[5..]);
    let public = public
        .strip_prefix("whpk_")
        .expect("public key without `whpk_`");
    let public = BASE64.decode(public).expect("public key not base64");
    let public: [u8; 32] = public.try_into().expect("a 32-byte public key");
    let verifier = VerifyingKey::from_bytes(&public).expect("valid public key");

    let encoded = signature.strip_prefix("v1a,").expect("missing `v1a,`");
    let bytes = BASE64.decode(encoded).expect("not base64");
    let bytes: [u8; 64] = bytes.try_into().expect("a 64-byte signature");
    let content = format!("{}.{}.{}", input.msg_id, input.timestamp, input.body);
    verifier
        .verify_strict(content.as_bytes(), &Signature::from_bytes(&bytes))
        .expect("signature does not verify");
}

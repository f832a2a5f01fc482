//! Each scheme against its provider's documented example where one is published (GitHub,
//! Slack, Twilio, Standard Webhooks), else against signatures made independently with
//! Python's `hmac` module (Stripe, Shopify, Zoom).

use chrono::{DateTime, TimeZone, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::json;

use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(k, v)| {
            (
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect()
}

fn at(unix: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(unix, 0).unwrap()
}

fn check(
    kind: &str,
    config: serde_json::Value,
    h: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), Rejection> {
    check_at(kind, config, h, body, now, "/ingest/src_1/tok")
}

fn check_at(
    kind: &str,
    config: serde_json::Value,
    h: &HeaderMap,
    body: &[u8],
    now: i64,
    path: &str,
) -> Result<(), Rejection> {
    let verifier = verifier(kind, &config).unwrap();
    let req = Inbound {
        headers: h,
        body,
        base_url: "http://127.0.0.1:8071",
        path_and_query: path,
        now: at(now),
    };
    verify(&verifier, &req)
}

#[test]
fn github_documented_example() {
    let config = json!({"secret": "It's a Secret to Everybody"});
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let h = headers(&[("x-hub-signature-256", sig)]);
    assert_eq!(
        check("github", config.clone(), &h, b"Hello, World!", 0),
        Ok(())
    );
    assert_eq!(
        check("github", config.clone(), &h, b"Hello, World?", 0),
        Err(Rejection::SignatureMismatch)
    );
    assert_eq!(
        check("github", config, &HeaderMap::new(), b"Hello, World!", 0),
        Err(Rejection::MissingSignature)
    );
}

#[test]
fn slack_documented_example_and_its_five_minutes() {
    let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let config = json!({"secret": "8f742231b10e8888abcd99yyyzzz85a5"});
    let h = headers(&[
        ("x-slack-request-timestamp", "1531420618"),
        (
            "x-slack-signature",
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        ),
    ]);
    let t = 1_531_420_618;
    assert_eq!(
        check("slack", config.clone(), &h, body.as_bytes(), t + 299),
        Ok(())
    );
    assert_eq!(
        check("slack", config, &h, body.as_bytes(), t + 301),
        Err(Rejection::TimestampOutOfTolerance)
    );
}

#[test]
fn twilio_documented_example_signs_the_url_it_called() {
    let body = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
    let h = headers(&[
        ("x-twilio-signature", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
        ("content-type", "application/x-www-form-urlencoded"),
    ]);
    let path = "/myapp.php?foo=1&bar=2";
    // Received on 127.0.0.1, signed for the public URL: only the override makes it match.
    let plain = json!({"secret": "12345"});
    assert_eq!(
        check_at("twilio", plain, &h, body.as_bytes(), 0, path),
        Err(Rejection::SignatureMismatch)
    );
    let behind_proxy = json!({"secret": "12345", "publicUrl": "https://mycompany.com"});
    assert_eq!(
        check_at("twilio", behind_proxy, &h, body.as_bytes(), 0, path),
        Ok(())
    );
}

#[test]
fn standard_webhooks_documented_example_in_both_header_families() {
    let config = json!({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"});
    let body = br#"{"test": 2432232314}"#;
    let sig = "v1,bm9ldHRoZXNpZ25hdHVyZQ== v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    for family in ["webhook", "svix"] {
        let h = headers(&[
            (
                &format!("{family}-id") as &str,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
            ),
            (&format!("{family}-timestamp"), "1614265330"),
            (&format!("{family}-signature"), sig),
        ]);
        assert_eq!(
            check("svix", config.clone(), &h, body, 1_614_265_330),
            Ok(())
        );
        assert_eq!(
            check(
                "standard-webhooks",
                config.clone(),
                &h,
                body,
                1_614_265_330 + 301
            ),
            Err(Rejection::TimestampOutOfTolerance)
        );
    }
}

#[test]
fn stripe_takes_any_of_several_v1_signatures_and_ignores_v0() {
    let body = br#"{"id":"evt_1","type":"invoice.paid"}"#;
    let good = "46dc069361a7691082640523fa33fe5d6c8c88d5f5e257cdf8cf11539d166595";
    let config = json!({"secret": "whsec_test_secret"});
    let header = format!("t=1700000000,v1={},v1={good},v0=ignored", "0".repeat(64));
    let h = headers(&[("stripe-signature", &header)]);
    assert_eq!(
        check("stripe", config.clone(), &h, body, 1_700_000_000 + 299),
        Ok(())
    );
    assert_eq!(
        check("stripe", config.clone(), &h, body, 1_700_000_000 + 301),
        Err(Rejection::TimestampOutOfTolerance)
    );
    let only_v0 = headers(&[(
        "stripe-signature",
        &format!("t=1700000000,v0={good}") as &str,
    )]);
    assert_eq!(
        check("stripe", config, &only_v0, body, 1_700_000_000),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn shopify_base64_and_a_rotated_secret_list() {
    let body = br#"{"id":820982911946154508}"#;
    let h = headers(&[(
        "x-shopify-hmac-sha256",
        "jqbalbO3Z8mDmrF2/+wzM3KYvbgqzVBF969vgiIy80I=",
    )]);
    let rotated = json!({"secrets": ["shpss_new", "shpss_secret"]});
    assert_eq!(check("shopify", rotated, &h, body, 0), Ok(()));
    let other = json!({"secret": "shpss_other"});
    assert_eq!(
        check("shopify", other, &h, body, 0),
        Err(Rejection::SignatureMismatch)
    );
}

#[test]
fn generic_hmac_basic_auth_and_api_key() {
    let body = b"{\"a\":1}";
    let config = json!({
        "secret": "s3cret", "header": "X-Signature", "prefix": "sha512=", "algorithm": "sha512",
        "encoding": "base64", "signedContent": "{timestamp}.{body}", "timestampHeader": "X-Timestamp",
    });
    let key: &[u8] = b"s3cret";
    let sig = verify::sign_base64(config::Algorithm::Sha512, key, &[b"1000.", body]);
    let h = headers(&[
        ("x-signature", &format!("sha512={sig}") as &str),
        ("x-timestamp", "1000"),
    ]);
    assert_eq!(check("hmac", config.clone(), &h, body, 1000), Ok(()));
    assert_eq!(
        check("hmac", config, &h, b"{\"a\":2}", 1000),
        Err(Rejection::SignatureMismatch)
    );

    let basic = json!({"username": "herald", "password": "pw"});
    let h = headers(&[("authorization", "Basic aGVyYWxkOnB3")]);
    assert_eq!(check("basic-auth", basic.clone(), &h, body, 0), Ok(()));
    let wrong = headers(&[("authorization", "Basic aGVyYWxkOnB4")]);
    assert_eq!(
        check("basic-auth", basic, &wrong, body, 0),
        Err(Rejection::BadCredentials)
    );

    let api_key = json!({"header": "X-Api-Key", "keys": ["old", "new"]});
    assert_eq!(
        check(
            "api-key",
            api_key.clone(),
            &headers(&[("x-api-key", "new")]),
            body,
            0
        ),
        Ok(())
    );
    assert_eq!(
        check(
            "api-key",
            api_key,
            &headers(&[("x-api-key", "nope")]),
            body,
            0
        ),
        Err(Rejection::BadCredentials)
    );
}

#[test]
fn configs_are_checked_with_a_clear_message() {
    assert!(verifier("github", &json!({}))
        .unwrap_err()
        .contains("secret"));
    assert!(verifier("svix", &json!({"secret": "not base64!"}))
        .unwrap_err()
        .contains("whsec_"));
    assert!(verifier("ftp", &json!({})).unwrap_err().contains("github"));
    let missing_ts =
        json!({"secret": "s", "header": "X-Sig", "signedContent": "{timestamp}.{body}"});
    assert!(verifier("hmac", &missing_ts)
        .unwrap_err()
        .contains("timestampHeader"));
    assert_eq!(
        verifier("generic-webhook", &serde_json::Value::Null),
        Ok(Verifier::None)
    );
}

#[test]
fn handshakes_of_slack_zoom_and_websub() {
    let none = HeaderMap::new();
    let req = |body: &'static [u8], path: &'static str| Inbound {
        headers: &none,
        body,
        base_url: "http://127.0.0.1",
        path_and_query: path,
        now: at(0),
    };
    let slack = verifier("slack", &json!({"secret": "s"})).unwrap();
    let body = br#"{"type":"url_verification","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","token":"x"}"#;
    let reply = handshake(&slack, &req(body, "/"), false).unwrap();
    let echoed: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(
        echoed["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );

    let zoom = verifier("zoom", &json!({"secret": "zoom_secret"})).unwrap();
    let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
    let reply = handshake(&zoom, &req(body, "/"), false).unwrap();
    let answer: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(answer["plainToken"], "qgg8vlvZRS6UYooatFL8Aw");
    assert_eq!(
        answer["encryptedToken"],
        "46a324cfb7c2ec760e4cd561586a53aadb6fc7561eb8d626d6ee1b71d808b3c0"
    );

    let get = req(
        b"",
        "/ingest/src_1/tok?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=x",
    );
    assert_eq!(
        handshake(&Verifier::None, &get, true).unwrap().body,
        "1158201444"
    );
    assert_eq!(
        handshake(&slack, &req(br#"{"type":"event_callback"}"#, "/"), false),
        None
    );
}

#[test]
fn meta_signs_like_github_and_its_subscription_check_needs_the_verify_token() {
    // Meta's `X-Hub-Signature-256` is GitHub's scheme with the app secret: GitHub's vector.
    let config = json!({"secret": "It's a Secret to Everybody", "verifyToken": "meatball"});
    let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let h = headers(&[("x-hub-signature-256", sig)]);
    assert_eq!(
        check("meta", config.clone(), &h, b"Hello, World!", 0),
        Ok(())
    );
    assert_eq!(
        check("meta", config.clone(), &h, b"Hello, World?", 0),
        Err(Rejection::SignatureMismatch)
    );

    let meta = verifier("meta", &config).unwrap();
    let none = HeaderMap::new();
    let get = |path: &'static str| Inbound {
        headers: &none,
        body: b"",
        base_url: "http://127.0.0.1",
        path_and_query: path,
        now: at(0),
    };
    let subscribe = "/i/s/t?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=";
    let right = get("/i/s/t?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatball");
    assert_eq!(handshake(&meta, &right, true).unwrap().body, "1158201444");
    let wrong = get("/i/s/t?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=beef");
    assert_eq!(handshake(&meta, &wrong, true), None);
    assert_eq!(handshake(&meta, &get(subscribe), true), None);

    let body = br#"{"object":"page","entry":[{"id":"1","changes":[{"field":"feed","value":{}}]}]}"#;
    assert_eq!(
        event_of("meta", &get_with_body(&none, body)).event_type,
        "page.feed"
    );
}

fn get_with_body<'a>(h: &'a HeaderMap, body: &'a [u8]) -> Inbound<'a> {
    Inbound {
        headers: h,
        body,
        base_url: "",
        path_and_query: "",
        now: at(0),
    }
}

#[test]
fn events_are_named_from_the_providers_headers_or_body() {
    let h = headers(&[
        ("x-github-event", "pull_request"),
        ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ("x-shopify-topic", "orders/create"),
    ]);
    let req = |body: &'static [u8]| Inbound {
        headers: &h,
        body,
        base_url: "",
        path_and_query: "",
        now: at(0),
    };
    let github = event_of("github", &req(br#"{"action":"opened"}"#));
    assert_eq!(github.event_type, "pull_request.opened");
    assert_eq!(
        github.event_id.as_deref(),
        Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
    );
    assert_eq!(event_of("shopify", &req(b"{}")).event_type, "orders.create");
    let stripe = event_of("stripe", &req(br#"{"id":"evt_1","type":"invoice.paid"}"#));
    assert_eq!(
        (stripe.event_type.as_str(), stripe.event_id.as_deref()),
        ("invoice.paid", Some("evt_1"))
    );
    assert_eq!(
        event_of("generic-webhook", &req(b"x")).event_type,
        "generic-webhook.received"
    );
}

#[test]
fn payloads_keep_json_objects_byte_for_byte_and_wrap_the_rest() {
    let raw = br#"{ "b":1,  "a" : [2] }"#;
    assert_eq!(payload_of(Some("application/json"), raw).as_bytes(), raw);
    let form: serde_json::Value = serde_json::from_str(&payload_of(
        Some("application/x-www-form-urlencoded"),
        b"a=1&b=2",
    ))
    .unwrap();
    assert_eq!(
        form,
        json!({"contentType": "application/x-www-form-urlencoded", "body": "a=1&b=2"})
    );
    let bytes: serde_json::Value = serde_json::from_str(&payload_of(None, &[0xff, 0x00])).unwrap();
    assert_eq!(bytes["bodyBase64"], "/wA=");
}

#[test]
fn standard_webhooks_agrees_with_the_reference_library() {
    let secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let reference = standardwebhooks::Webhook::new(secret).unwrap();
    let body = br#"{"type":"invoice.paid","data":{"id":7}}"#;
    // The reference library checks the timestamp against the real clock.
    let now = Utc::now().timestamp();
    let signature = reference
        .sign("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", now, body)
        .unwrap();
    let ts = now.to_string();
    let h = headers(&[
        ("webhook-id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"),
        ("webhook-timestamp", &ts),
        ("webhook-signature", &signature),
    ]);
    let config = json!({"secret": secret});
    assert!(reference.verify(body, &h).is_ok());
    assert_eq!(
        check("standard-webhooks", config.clone(), &h, body, now),
        Ok(())
    );
    let mut tampered = body.to_vec();
    tampered[10] ^= 1;
    assert!(reference.verify(&tampered, &h).is_err());
    assert_eq!(
        check("standard-webhooks", config, &h, &tampered, now),
        Err(Rejection::SignatureMismatch)
    );
}

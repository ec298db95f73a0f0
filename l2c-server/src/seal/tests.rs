use proptest::prelude::*;

use super::*;

fn key() -> String {
    DataKeys::generate_key()
}

#[test]
fn round_trip_under_the_current_key() {
    let keys = DataKeys::new(&key(), &[]).unwrap();
    let sealed = keys.seal(
        Field::LeadRawPayload,
        "lead_1",
        "{\"mobile\":\"13800138000\"}",
    );
    assert!(sealed.starts_with("l2cenc:v1:"));
    assert!(!sealed.contains("13800138000"));
    assert_eq!(
        keys.open(Field::LeadRawPayload, "lead_1", &sealed).unwrap(),
        "{\"mobile\":\"13800138000\"}"
    );
    // A fresh nonce each time: the same value never seals to the same text.
    assert_ne!(
        sealed,
        keys.seal(
            Field::LeadRawPayload,
            "lead_1",
            "{\"mobile\":\"13800138000\"}"
        )
    );
}

#[test]
fn key_id_comes_from_the_key_not_the_key_itself() {
    let k = key();
    let a = DataKeys::new(&k, &[]).unwrap();
    let b = DataKeys::new(&k, &[]).unwrap();
    assert_eq!(a.current_kid(), b.current_kid());
    let kid = a.current_kid().unwrap().as_str().to_owned();
    assert_eq!(kid.len(), 16);
    assert!(!k.contains(&kid));
    assert!(!format!("{a:?}").contains(&k));
}

#[test]
fn another_key_refuses_with_unknown_kid() {
    let a = DataKeys::new(&key(), &[]).unwrap();
    let b = DataKeys::new(&key(), &[]).unwrap();
    let sealed = a.seal(Field::CustomerName, "cus_1", "张三");
    let err = b.open(Field::CustomerName, "cus_1", &sealed).unwrap_err();
    assert!(matches!(err, SealError::UnknownKey { .. }), "{err:?}");
    let err = DataKeys::plain()
        .open(Field::CustomerName, "cus_1", &sealed)
        .unwrap_err();
    assert!(matches!(err, SealError::KeyRequired { .. }), "{err:?}");
}

#[test]
fn old_keys_still_open_and_new_values_use_the_current_one() {
    let (ka, kb) = (key(), key());
    let a = DataKeys::new(&ka, &[]).unwrap();
    let sealed_a = a.seal(Field::WebhookSecret, "wh_1", "whsec_x");
    let b = DataKeys::new(&kb, &[&ka]).unwrap();
    assert_eq!(
        b.open(Field::WebhookSecret, "wh_1", &sealed_a).unwrap(),
        "whsec_x"
    );
    let sealed_b = b.seal(Field::WebhookSecret, "wh_1", "whsec_x");
    assert_eq!(
        DataKeys::kid_of(&sealed_b),
        Some(b.current_kid().unwrap().as_str())
    );
    // Blind indexes: every known key, the current one first.
    let all = b.blind_indexes(Field::CustomerMobile, "+8613800138000");
    assert_eq!(all.len(), 2);
    assert_eq!(
        all[0],
        b.blind_index(Field::CustomerMobile, "+8613800138000")
    );
    assert_eq!(
        all[1],
        a.blind_index(Field::CustomerMobile, "+8613800138000")
    );
}

#[test]
fn tampered_ciphertext_does_not_open() {
    let keys = DataKeys::new(&key(), &[]).unwrap();
    let sealed = keys.seal(Field::LeadName, "lead_1", "李四");
    // Flip one character of the base64 body (the last one may only carry padding bits).
    let mut chars: Vec<char> = sealed.chars().collect();
    let i = chars.len() - 5;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    let err = keys.open(Field::LeadName, "lead_1", &tampered).unwrap_err();
    assert!(matches!(err, SealError::Tampered { .. }), "{err:?}");
    // Truncated.
    let err = keys
        .open(Field::LeadName, "lead_1", &sealed[..sealed.len() - 10])
        .unwrap_err();
    assert!(
        matches!(
            err,
            SealError::Tampered { .. } | SealError::Malformed { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn a_value_moved_to_another_row_or_column_does_not_open() {
    let keys = DataKeys::new(&key(), &[]).unwrap();
    let sealed = keys.seal(Field::CustomerMobile, "cus_1", "+8613800138000");
    assert!(matches!(
        keys.open(Field::CustomerMobile, "cus_2", &sealed),
        Err(SealError::Tampered { .. })
    ));
    assert!(matches!(
        keys.open(Field::LeadMobile, "cus_1", &sealed),
        Err(SealError::Tampered { .. })
    ));
}

#[test]
fn plain_values_pass_through_and_never_look_sealed() {
    let plain = DataKeys::plain();
    assert_eq!(plain.seal(Field::CustomerName, "c", "王五"), "王五");
    assert_eq!(
        plain.open(Field::CustomerName, "c", "王五").unwrap(),
        "王五"
    );
    // A partner sending a name shaped like an envelope cannot make the database look sealed.
    let tricky = "l2cenc:v1:0123456789abcdef:AAAA";
    let stored = plain.seal(Field::CustomerName, "c", tricky);
    assert!(!stored.starts_with("l2cenc:v1:"));
    assert_eq!(
        plain.open(Field::CustomerName, "c", &stored).unwrap(),
        tricky
    );
    // With a key, a plain value (not sealed yet) reads as is.
    let keys = DataKeys::new(&key(), &[]).unwrap();
    assert_eq!(keys.open(Field::CustomerName, "c", "王五").unwrap(), "王五");
    assert_eq!(
        keys.open(Field::CustomerName, "c", &stored).unwrap(),
        tricky
    );
    assert_eq!(
        plain.blind_index(Field::CustomerMobile, "+8613800138000"),
        "+8613800138000"
    );
}

#[test]
fn malformed_keys_are_refused_with_the_setting_named() {
    for bad in ["", "not base64!", "AAAA", &"A".repeat(60)] {
        let err = DataKeys::new(bad, &[]).unwrap_err();
        assert!(err.to_string().contains("L2C_DATA_KEY"), "{err}");
        assert!(!err.to_string().contains(bad) || bad.is_empty());
    }
    let err = DataKeys::new(&key(), &["short"]).unwrap_err();
    assert!(err.to_string().contains("L2C_OLD_DATA_KEYS[1]"), "{err}");
    assert_eq!(
        DataKeys::from_settings(None, Some(&key())).unwrap_err(),
        SealError::OldKeysWithoutCurrent
    );
    assert!(!DataKeys::from_settings(None, None).unwrap().is_enabled());
    assert!(
        DataKeys::from_settings(Some(&key()), Some(&format!(" {}, {} ", key(), key())))
            .unwrap()
            .is_enabled()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever a corrupted or hostile database holds, opening it never panics: it returns the
    /// plain value, or an error.
    #[test]
    fn opening_anything_never_panics(stored in ".{0,200}", kid in "[0-9a-f]{16}", body in "[A-Za-z0-9_-]{0,120}") {
        let keys = DataKeys::new(&DataKeys::generate_key(), &[]).unwrap();
        let _ = keys.open(Field::CustomerName, "cus_1", &stored);
        let _ = keys.open(Field::CustomerName, "cus_1", &format!("l2cenc:v1:{kid}:{body}"));
        let own = keys.current_kid().unwrap().as_str().to_owned();
        let r = keys.open(Field::CustomerName, "cus_1", &format!("l2cenc:v1:{own}:{body}"));
        prop_assert!(r.is_err());
        let _ = DataKeys::plain().open(Field::CustomerName, "cus_1", &stored);
        let _ = DataKeys::kid_of(&stored);
    }

    #[test]
    fn every_value_round_trips(value in ".{0,300}", row in "[a-z_0-9/]{1,40}") {
        let keys = DataKeys::new(&DataKeys::generate_key(), &[]).unwrap();
        let sealed = keys.seal(Field::LeadFormFields, &row, &value);
        prop_assert_eq!(keys.open(Field::LeadFormFields, &row, &sealed).unwrap(), value.clone());
        let plain = DataKeys::plain();
        let stored = plain.seal(Field::LeadFormFields, &row, &value);
        prop_assert_eq!(plain.open(Field::LeadFormFields, &row, &stored).unwrap(), value);
    }
}

/// A blind index is stored and looked up forever: pin its construction (HMAC-SHA256 under the
/// key derived with the label "l2c data key v1: blind index", over `field label ‖ 0 ‖ value`),
/// computed independently with Python's hmac module.
#[test]
fn blind_index_known_answer() {
    let keys = DataKeys::new("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", &[]).unwrap();
    assert_eq!(
        keys.blind_index(Field::CustomerMobile, "+8613800138000"),
        "bi1:acef659a95610e19:b68e0ca09046d7d4f2d0a37564c210f50b451c2364d1b92e88b2039924e9e506"
    );
}

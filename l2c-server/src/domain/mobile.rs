//! Mainland mobile numbers: normalization to E.164 and masking.

use std::fmt;

/// A normalized mainland mobile number, kept in E.164 form (`+8613800138000`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Mobile(String);

/// Why a string is not a mainland mobile number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "must be a mainland mobile number: 11 digits starting with 13–19, optionally prefixed by +86 or 0086"
)]
pub struct InvalidMobile;

impl Mobile {
    /// Normalizes `raw`: strips spaces and dashes and a `+86` / `0086` prefix, then requires
    /// `^1[3-9]\d{9}$`.
    ///
    /// # Errors
    ///
    /// [`InvalidMobile`] when what remains is not a mainland mobile number.
    pub fn parse(raw: &str) -> Result<Self, InvalidMobile> {
        let compact: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let national = if let Some(rest) = compact.strip_prefix("+86") {
            rest
        } else if let Some(rest) = compact.strip_prefix("0086") {
            rest
        } else {
            compact.as_str()
        };
        let bytes = national.as_bytes();
        let valid = bytes.len() == 11
            && bytes[0] == b'1'
            && (b'3'..=b'9').contains(&bytes[1])
            && bytes.iter().all(u8::is_ascii_digit);
        if valid {
            Ok(Self(format!("+86{national}")))
        } else {
            Err(InvalidMobile)
        }
    }

    /// Rebuilds a number read back from storage (already E.164); re-validates it.
    ///
    /// # Errors
    ///
    /// [`InvalidMobile`] when the stored value is not a valid number.
    pub fn from_e164(stored: &str) -> Result<Self, InvalidMobile> {
        Self::parse(stored)
    }

    /// The E.164 form, `+8613800138000`.
    pub fn e164(&self) -> &str {
        &self.0
    }

    /// The 11 national digits, `13800138000`.
    pub fn national(&self) -> &str {
        &self.0[3..]
    }

    /// The masked form, `138****8000`.
    pub fn masked(&self) -> String {
        let n = self.national();
        format!("{}****{}", &n[..3], &n[7..])
    }
}

impl fmt::Debug for Mobile {
    // Never print the full number in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mobile({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_common_spellings_and_stores_e164() {
        for raw in [
            "13800138000",
            "138 0013 8000",
            "138-0013-8000",
            "+86 138 0013 8000",
            "+8613800138000",
            "0086-138-0013-8000",
            " 19912345678 ",
        ] {
            let m = Mobile::parse(raw).unwrap_or_else(|_| panic!("{raw}"));
            assert!(m.e164().starts_with("+861"), "{raw}");
            assert_eq!(m.e164().len(), 14, "{raw}");
        }
        assert_eq!(
            Mobile::parse("138-0013-8000").unwrap().e164(),
            "+8613800138000"
        );
    }

    #[test]
    fn rejects_what_is_not_a_mainland_mobile() {
        for raw in [
            "",
            "12800138000",
            "1380013800",
            "138001380000",
            "1380013800a",
            "+85213800138000",
            "+1 138 0013 8000",
            "86 13800138000x",
            "１３８００１３８０００",
            "138.0013.8000",
            "138\t0013\t8000",
        ] {
            assert_eq!(Mobile::parse(raw), Err(InvalidMobile), "{raw}");
        }
    }

    #[test]
    fn masks_the_middle_four_digits() {
        let m = Mobile::parse("+86 138 1234 5678").unwrap();
        assert_eq!(m.masked(), "138****5678");
        assert!(!format!("{m:?}").contains("13812345678"));
    }
}

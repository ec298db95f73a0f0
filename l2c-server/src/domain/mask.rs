//! Masking of personal data in partner-facing views.

/// Masks a name, keeping its first character: `张三` → `张*`, `欧阳娜娜` → `欧***`.
///
/// An empty name stays empty; whitespace is dropped first.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars().filter(|c| !c.is_whitespace());
    match chars.next() {
        None => String::new(),
        Some(first) => {
            let rest = chars.count().max(1);
            let mut out = String::with_capacity(first.len_utf8() + rest);
            out.push(first);
            out.extend(std::iter::repeat_n('*', rest));
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_first_character() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("欧阳娜娜"), "欧***");
        assert_eq!(mask_name("李"), "李*");
        assert_eq!(mask_name("Alice Smith"), "A*********");
        assert_eq!(mask_name(""), "");
        assert!(!mask_name("张三丰").contains('三'));
    }
}

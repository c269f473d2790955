//! The built-in presets of RULES.md, written as rule files: presets are data, not code.
//!
//! docs/RULES.md shows each file in full; a test keeps the two the same.

/// The presets' names, in the order RULES.md lists them.
pub const NAMES: &[&str] = &["tiedong", "chongqing"];

const TIEDONG: &str = include_str!("presets/tiedong.toml");
const CHONGQING: &str = include_str!("presets/chongqing.toml");

/// The rule file of preset `name`, if there is one.
pub fn text(name: &str) -> Option<&'static str> {
    match name {
        "tiedong" => Some(TIEDONG),
        "chongqing" => Some(CHONGQING),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::RuleSet;

    #[test]
    fn every_preset_is_a_valid_rule_file_named_after_itself() {
        for name in NAMES {
            let rules = RuleSet::preset(name).expect("test input is valid");
            assert_eq!(rules.name(), Some(*name));
        }
    }

    #[test]
    fn docs_show_every_preset_file_verbatim() {
        let docs = include_str!("../../../docs/RULES.md");
        for name in NAMES {
            let file = text(name).expect("test input is valid");
            assert!(
                docs.contains(&format!("```toml\n{file}```")),
                "docs/RULES.md must show presets/{name}.toml verbatim in a ```toml block"
            );
        }
    }

    #[test]
    fn every_rule_file_shown_in_the_docs_is_valid() {
        let docs = include_str!("../../../docs/RULES.md");
        let blocks: Vec<&str> = docs
            .split("```toml\n")
            .skip(1)
            .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
            .collect();
        assert!(blocks.len() >= 3);
        for block in blocks {
            if let Err(e) = RuleSet::from_toml(block) {
                panic!("{e}\nin:\n{block}");
            }
        }
    }

    #[test]
    fn an_unknown_preset_lists_the_known_ones() {
        let err = RuleSet::preset("beijing").expect_err("test input is refused");
        assert_eq!(
            err.to_string(),
            "unknown preset \"beijing\" (the presets are: tiedong, chongqing)"
        );
    }
}

//! Filling the templates in `templates/`: each `{{key}}` becomes its value.
//!
//! Values come from validated names and from paths already quoted for TOML, so no escaping
//! happens here; the tests check that every placeholder of every template gets a value.

/// `template` with each `{{key}}` of `vars` replaced by its value.
pub fn render<V: AsRef<str>>(template: &str, vars: &[(&str, V)]) -> String {
    vars.iter().fold(template.to_owned(), |text, (key, value)| {
        text.replace(&format!("{{{{{key}}}}}"), value.as_ref())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced() {
        assert_eq!(
            render("a {{x}} b {{x}} {{y}}", &[("x", "1"), ("y", "2")]),
            "a 1 b 1 2"
        );
        assert_eq!(render("{{unknown}}", &[("x", "1")]), "{{unknown}}");
    }
}

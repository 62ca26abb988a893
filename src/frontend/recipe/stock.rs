//! The stock recipes, built into the binary from `recipes/*.toml`.
//!
//! They are ordinary hoist.toml files, read by the same parser, so what
//! `--recipe node` means can be read (and copied) from the repository, and
//! `hoist init` writes one out as the start of a project's own file.

use std::path::Path;

use super::file::{self, RecipeFile};
use super::{Location, RecipeError};

/// Each stock recipe: its name, its text, and what it is for.
pub const STOCK: &[(&str, &str, &str)] = &[
    (
        "node",
        include_str!("../../../recipes/node.toml"),
        "a Node.js service with npm dependencies",
    ),
    (
        "nextjs-standalone",
        include_str!("../../../recipes/nextjs-standalone.toml"),
        "a Next.js app built with output: \"standalone\"",
    ),
    (
        "python",
        include_str!("../../../recipes/python.toml"),
        "a Python service with a requirements.txt",
    ),
    (
        "static",
        include_str!("../../../recipes/static.toml"),
        "a self-contained binary on a distroless-style base",
    ),
];

/// The names, for messages.
pub fn names() -> String {
    STOCK.iter().map(|s| s.0).collect::<Vec<_>>().join(", ")
}

/// The text of a stock recipe.
pub fn text(name: &str) -> Option<&'static str> {
    STOCK.iter().find(|s| s.0 == name).map(|s| s.1)
}

/// Reads a stock recipe; `at` is where it was asked for.
pub fn load(name: &str, at: &Location) -> Result<RecipeFile, RecipeError> {
    let text = text(name).ok_or_else(|| RecipeError::UnknownRecipe {
        at: at.clone(),
        name: name.to_owned(),
        known: names(),
    })?;
    file::parse(
        text.as_bytes(),
        &format!("recipes/{name}.toml"),
        Path::new("."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stock_recipe_parses_and_has_a_base_and_a_user() {
        for (name, _, _) in STOCK {
            let r = load(name, &Location::file_start("t")).unwrap();
            let s = &r.top.spec;
            assert!(s.image.base.is_some(), "{name}");
            assert_eq!(
                s.image.user.as_ref().and_then(|u| u.uid),
                Some(1001),
                "{name}"
            );
            assert!(r.top.targets.contains_key("dev"), "{name}");
            assert!(r.images.is_empty(), "{name}");
        }
        let err = load("ruby", &Location::file_start("hoist.toml")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "hoist.toml:1:1: key `recipe`: there is no stock recipe `ruby`; use one of node, nextjs-standalone, python, static"
        );
    }
}

//! Parsing `#[tool(name = "...", description = "...", settings = Type, deterministic, needs_approval,
//! background, crate = "...")]`.

use proc_macro2::{Span, TokenStream};
use syn::{LitStr, Path, Type, meta::ParseNestedMeta, parse::Parser, spanned::Spanned};

use crate::classify::Ctxt;

/// The attribute's arguments, each with the span to blame if it is wrong.
#[derive(Default)]
pub struct ToolArgs {
    /// `name = "..."`.
    pub name: Option<LitStr>,
    /// `description = "..."`.
    pub description: Option<LitStr>,
    /// `crate = "..."`, parsed as a path.
    pub krate: Option<Path>,
    /// `settings = Type`: what the agent's `[tool_config.NAME]` table deserializes into.
    pub settings: Option<Type>,
    /// `deterministic`: the same arguments always give the same output.
    pub deterministic: bool,
    /// `needs_approval`: every call waits for a person's approval before it runs.
    pub needs_approval: bool,
    /// `background`: calls answer "started" at once and deliver their result later.
    pub background: bool,
}

/// Parses the attribute's tokens; problems go to `cx` and parsing continues where it can.
pub fn parse(tokens: TokenStream, cx: &mut Ctxt) -> ToolArgs {
    let mut args = ToolArgs::default();
    let parser = syn::meta::parser(|meta| parse_one(&meta, &mut args, cx));
    if let Err(err) = parser.parse2(tokens) {
        cx.push(err);
    }
    args
}

fn parse_one(meta: &ParseNestedMeta<'_>, args: &mut ToolArgs, cx: &mut Ctxt) -> syn::Result<()> {
    let key = meta
        .path
        .get_ident()
        .map(ToString::to_string)
        .unwrap_or_default();
    match key.as_str() {
        "name" => set_once(&mut args.name, meta, "name", cx),
        "description" => set_once(&mut args.description, meta, "description", cx),
        "crate" => {
            let lit: LitStr = meta.value()?.parse()?;
            match lit.parse::<Path>() {
                Ok(path) => {
                    if args.krate.replace(path).is_some() {
                        cx.error(lit.span(), "`crate` is given twice");
                    }
                }
                Err(_) => cx.error(lit.span(), "`crate` must be a path, like \"::agent_tool\""),
            }
            Ok(())
        }
        "settings" => {
            let value = meta.value()?;
            if value.peek(LitStr) {
                let lit: LitStr = value.parse()?;
                cx.error(
                    lit.span(),
                    "`settings` takes a type, not a string: write `settings = MySettings`",
                );
                return Ok(());
            }
            let ty: Type = value.parse().map_err(|err| {
                syn::Error::new(
                    err.span(),
                    "`settings` takes a type, like `settings = MySettings`",
                )
            })?;
            if args.settings.is_some() {
                cx.error(ty.span(), "`settings` is given twice");
            }
            args.settings = Some(ty);
            Ok(())
        }
        "deterministic" => {
            if meta.input.peek(syn::Token![=]) {
                return Err(meta.error("`deterministic` is a flag: write `#[tool(deterministic)]`"));
            }
            if args.deterministic {
                cx.error(meta.path.span(), "`deterministic` is given twice");
            }
            args.deterministic = true;
            Ok(())
        }
        "needs_approval" => {
            if meta.input.peek(syn::Token![=]) {
                return Err(
                    meta.error("`needs_approval` is a flag: write `#[tool(needs_approval)]`")
                );
            }
            if args.needs_approval {
                cx.error(meta.path.span(), "`needs_approval` is given twice");
            }
            args.needs_approval = true;
            Ok(())
        }
        "background" => {
            if meta.input.peek(syn::Token![=]) {
                return Err(meta.error("`background` is a flag: write `#[tool(background)]`"));
            }
            if args.background {
                cx.error(meta.path.span(), "`background` is given twice");
            }
            args.background = true;
            Ok(())
        }
        _ => Err(meta.error(
            "unknown #[tool] argument; expected `name = \"...\"`, `description = \"...\"`, `settings = Type`, `deterministic`, `needs_approval`, `background` or `crate = \"...\"`",
        )),
    }
}

fn set_once(
    slot: &mut Option<LitStr>,
    meta: &ParseNestedMeta<'_>,
    key: &str,
    cx: &mut Ctxt,
) -> syn::Result<()> {
    let lit: LitStr = meta.value()?.parse()?;
    if slot.is_some() {
        cx.error(lit.span(), format!("`{key}` is given twice"));
    }
    *slot = Some(lit);
    Ok(())
}

/// The default crate path.
pub fn default_crate() -> Path {
    syn::parse_quote_spanned!(Span::call_site()=> ::agent_tool)
}

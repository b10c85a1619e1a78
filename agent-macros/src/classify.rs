//! Checking a function's signature and turning it into a [`ToolFn`] model.
//!
//! Every problem is recorded in a [`Ctxt`] at the exact span to blame, and checking goes on, so
//! one compile shows all of them. Parameter attributes are always stripped from the function
//! (rustc rejects doc comments on parameters), so the function can be emitted even on error.

use proc_macro2::Span;
use quote::ToTokens;
use syn::{
    Attribute, Expr, ExprLit, FnArg, GenericArgument, Ident, ItemFn, Lit, LitStr, Meta, Pat, Path,
    PathArguments, ReturnType, Type, spanned::Spanned, visit::Visit,
};

use crate::attr::{self, ToolArgs};

/// Collects every error found, like serde_derive's `Ctxt`.
#[derive(Default)]
pub struct Ctxt {
    errors: Vec<syn::Error>,
}

impl Ctxt {
    /// Records a ready-made error.
    pub fn push(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    /// Records `message` at `span`.
    pub fn error(&mut self, span: Span, message: impl std::fmt::Display) {
        self.errors.push(syn::Error::new(span, message));
    }

    /// Records `message` spanning all of `tokens`.
    pub fn spanned(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.errors.push(syn::Error::new_spanned(tokens, message));
    }

    /// The errors, if there were any.
    pub fn into_errors(self) -> Vec<syn::Error> {
        self.errors
    }
}

/// A checked `#[tool]` function.
pub struct ToolFn {
    /// The function, with parameter attributes removed; emitted as is.
    pub item: ItemFn,
    /// The tool name the model sees.
    pub name: String,
    /// The description the model sees.
    pub description: String,
    /// Parameters in declaration order.
    pub params: Vec<Param>,
    /// What the function returns.
    pub ret: Return,
    /// The path to agent-core.
    pub krate: Path,
    /// The type its settings table deserializes into, from `settings = Type`.
    pub settings: Option<Type>,
    /// `deterministic`: the same arguments always give the same output.
    pub deterministic: bool,
    /// `needs_approval`: every call waits for a person's approval.
    pub needs_approval: bool,
    /// `background`: calls answer "started" at once and deliver their result later.
    pub background: bool,
}

/// One parameter.
pub enum Param {
    /// A schema property.
    Arg {
        /// Its name (the property name).
        ident: Ident,
        /// Its type.
        ty: Box<Type>,
        /// Doc comments and `#[schemars]`/`#[serde]` attributes, moved to the generated field.
        attrs: Vec<Attribute>,
    },
    /// The `ToolContext`, by value or by reference.
    Context {
        /// `&ToolContext`.
        by_ref: bool,
    },
}

/// The return type, classified.
pub enum Return {
    /// No return type or `()`.
    Unit,
    /// `T`.
    Value(Box<Type>),
    /// `Result<T, E>` (or an alias such as `anyhow::Result<T>`).
    Result {
        /// The whole type, for errors about aliases.
        whole: Box<Type>,
        /// `T`, when written out.
        ok: Option<Box<Type>>,
        /// `E`, when written out.
        err: Option<Box<Type>>,
    },
}

/// Checks `item` and builds the model. Always returns the stripped function, so it can be
/// emitted whatever the errors.
pub fn classify(args: ToolArgs, mut item: ItemFn, cx: &mut Ctxt) -> ToolFn {
    let krate = args.krate.unwrap_or_else(attr::default_crate);
    check_signature(&item, cx);
    let params = classify_params(&mut item, cx);
    let ret = classify_return(&item.sig.output);
    let name = tool_name(args.name.as_ref(), &item.sig.ident, cx);
    let description = match &args.description {
        Some(lit) => {
            let text = lit.value().trim().to_owned();
            if text.is_empty() {
                cx.error(
                    lit.span(),
                    "the description is empty; the model reads it to decide when to call the tool",
                );
            }
            text
        }
        None => {
            let text = doc_text(&item.attrs);
            if text.is_empty() {
                cx.error(
                    item.sig.ident.span(),
                    format!(
                        "tool `{name}` has no description: add a doc comment (the model reads it to decide when to call the tool) or `#[tool(description = \"...\")]`"
                    ),
                );
            }
            text
        }
    };
    ToolFn {
        item,
        name,
        description,
        params,
        ret,
        krate,
        settings: args.settings,
        deterministic: args.deterministic,
        needs_approval: args.needs_approval,
        background: args.background,
    }
}

fn check_signature(item: &ItemFn, cx: &mut Ctxt) {
    let sig = &item.sig;
    if let syn::Safety::Unsafe(token) = &sig.safety {
        cx.spanned(
            token,
            "a #[tool] function cannot be `unsafe`: the model calls it with any arguments",
        );
    }
    if let Some(abi) = &sig.abi {
        cx.spanned(abi, "a #[tool] function cannot have an `extern` ABI");
    }
    if let Some(variadic) = &sig.variadic {
        cx.spanned(variadic, "a #[tool] function cannot be variadic");
    }
    if !sig.generics.params.is_empty() {
        cx.spanned(
            &sig.generics,
            "a #[tool] function cannot be generic: its arguments are deserialized from the model's JSON into concrete types",
        );
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        cx.spanned(
            where_clause,
            "a #[tool] function cannot have a `where` clause",
        );
    }
}

fn classify_params(item: &mut ItemFn, cx: &mut Ctxt) -> Vec<Param> {
    let mut params = Vec::new();
    let mut seen_context = false;
    for input in &mut item.sig.inputs {
        let typed = match input {
            FnArg::Receiver(receiver) => {
                cx.spanned(
                    &*receiver,
                    "#[tool] goes on free functions; `self` is not supported (call the method from a free function instead)",
                );
                continue;
            }
            FnArg::Typed(typed) => typed,
        };
        let moved = take_param_attrs(&mut typed.attrs, cx);

        if let Some(by_ref) = context_type(&typed.ty, cx) {
            if seen_context {
                cx.spanned(&typed.ty, "only one `ToolContext` parameter is allowed");
            }
            seen_context = true;
            for attr in &moved {
                cx.spanned(attr, "the `ToolContext` parameter is not part of the schema, so it takes no docs or schema attributes");
            }
            params.push(Param::Context { by_ref });
            continue;
        }

        let ident = match &*typed.pat {
            Pat::Ident(pat) if pat.by_ref.is_none() && pat.subpat.is_none() => pat.ident.clone(),
            other => {
                cx.spanned(
                    other,
                    "use a plain parameter name here: it becomes the property name the model fills in",
                );
                continue;
            }
        };
        check_owned(&typed.ty, cx);
        params.push(Param::Arg {
            ident,
            ty: typed.ty.clone(),
            attrs: moved,
        });
    }
    params
}

/// Removes a parameter's attributes: docs, `#[schemars]` and `#[serde]` are returned (they move
/// to the generated field), lint attributes stay, anything else is an error.
fn take_param_attrs(attrs: &mut Vec<Attribute>, cx: &mut Ctxt) -> Vec<Attribute> {
    let mut moved = Vec::new();
    let mut docs = Vec::new();
    let mut kept = Vec::new();
    for attr in attrs.drain(..) {
        let path = attr.path();
        if path.is_ident("doc") {
            docs.push(attr);
        } else if path.is_ident("schemars") || path.is_ident("serde") {
            moved.push(attr);
        } else if ["allow", "warn", "deny", "expect"]
            .iter()
            .any(|lint| path.is_ident(lint))
        {
            kept.push(attr);
        } else {
            cx.spanned(
                &attr,
                "unsupported attribute on a #[tool] parameter; use doc comments, #[schemars(...)] or #[serde(...)]",
            );
        }
    }
    *attrs = kept;
    if !docs.is_empty() {
        // One unwrapped doc string: schemars would keep the source's hard line breaks.
        let text = doc_text(&docs);
        moved.insert(
            0,
            syn::parse_quote_spanned!(docs[0].span()=> #[doc = #text]),
        );
    }
    moved
}

/// `Some(by_ref)` if `ty` is `ToolContext` or `&ToolContext` (matched by last path segment).
fn context_type(ty: &Type, cx: &mut Ctxt) -> Option<bool> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .filter(|segment| segment.ident == "ToolContext")
            .map(|_| false),
        Type::Reference(reference) => {
            let inner = context_type(&reference.elem, cx)?;
            if inner {
                return None;
            }
            if let Some(token) = &reference.mutability {
                cx.spanned(
                    token,
                    "take the `ToolContext` by value or by `&`, not by `&mut`",
                );
            }
            Some(true)
        }
        Type::Paren(paren) => context_type(&paren.elem, cx),
        Type::Group(group) => context_type(&group.elem, cx),
        _ => None,
    }
}

/// Parameters are deserialized from JSON, so they must own their data: no references, no
/// borrowed lifetimes, no `impl Trait`.
fn check_owned(ty: &Type, cx: &mut Ctxt) {
    struct Finder<'a> {
        cx: &'a mut Ctxt,
    }
    impl<'ast> Visit<'ast> for Finder<'_> {
        fn visit_type_reference(&mut self, reference: &'ast syn::TypeReference) {
            self.cx.spanned(
                reference,
                "tool parameters must be owned types (`String`, not `&str`): arguments are deserialized from the model's JSON",
            );
        }
        fn visit_type_impl_trait(&mut self, ty: &'ast syn::TypeImplTrait) {
            self.cx.spanned(
                ty,
                "`impl Trait` parameters are not supported: the schema needs a concrete type",
            );
        }
        fn visit_type_trait_object(&mut self, ty: &'ast syn::TypeTraitObject) {
            self.cx.spanned(
                ty,
                "trait objects cannot be deserialized; use a concrete type",
            );
        }
        fn visit_lifetime(&mut self, lifetime: &'ast syn::Lifetime) {
            if lifetime.ident != "static" {
                self.cx.spanned(
                    lifetime,
                    "tool parameters cannot borrow: use an owned type without lifetimes",
                );
            }
        }
        fn visit_type_infer(&mut self, ty: &'ast syn::TypeInfer) {
            self.cx.spanned(ty, "write the parameter's type out");
        }
    }
    Finder { cx }.visit_type(ty);
}

fn classify_return(output: &ReturnType) -> Return {
    let ty = match output {
        ReturnType::Default => return Return::Unit,
        ReturnType::Type(_, ty) => ty,
    };
    if let Type::Tuple(tuple) = &**ty
        && tuple.elems.is_empty()
    {
        return Return::Unit;
    }
    if let Type::Path(path) = &**ty
        && let Some(last) = path.path.segments.last()
        && last.ident.to_string().ends_with("Result")
    {
        let mut types = Vec::new();
        if let PathArguments::AngleBracketed(args) = &last.arguments {
            for arg in &args.args {
                if let GenericArgument::Type(ty) = arg {
                    types.push(Box::new(ty.clone()));
                }
            }
        }
        let mut types = types.into_iter();
        return Return::Result {
            whole: ty.clone(),
            ok: types.next(),
            err: types.next(),
        };
    }
    Return::Value(ty.clone())
}

fn tool_name(explicit: Option<&LitStr>, ident: &Ident, cx: &mut Ctxt) -> String {
    let (name, span) = match explicit {
        Some(lit) => (lit.value(), lit.span()),
        None => {
            let text = ident.to_string();
            (
                text.strip_prefix("r#").unwrap_or(&text).to_owned(),
                ident.span(),
            )
        }
    };
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        cx.error(
            span,
            format!(
                "`{name}` is not a valid tool name: use 1 to 64 ASCII letters, digits, `_` or `-`"
            ),
        );
    }
    name
}

/// The doc comment's text: one leading space per line removed, outer blank lines trimmed.
pub fn doc_text(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let Meta::NameValue(nv) = &attr.meta
            && let Expr::Lit(ExprLit {
                lit: Lit::Str(text),
                ..
            }) = &nv.value
        {
            for line in text.value().split('\n') {
                lines.push(line.strip_prefix(' ').unwrap_or(line).trim_end().to_owned());
            }
        }
    }
    unwrap_lines(&lines)
}

/// Joins hard-wrapped lines into paragraphs, as rustdoc renders them: a blank line separates
/// paragraphs; list items (`- `, `* `, `1. `) and indented lines keep their line breaks.
fn unwrap_lines(lines: &[String]) -> String {
    let mut text = String::new();
    let mut previous_blank = true;
    for line in lines {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            if !previous_blank {
                text.push_str("\n\n");
            }
            previous_blank = true;
            continue;
        }
        let keeps_break = line.starts_with(' ')
            || trimmed.starts_with("- ")
            || trimmed.starts_with("* ")
            || trimmed
                .split_once(". ")
                .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !previous_blank {
            text.push(if keeps_break { '\n' } else { ' ' });
        }
        text.push_str(if keeps_break {
            line.trim_end()
        } else {
            trimmed
        });
        previous_blank = false;
    }
    text.trim().to_owned()
}

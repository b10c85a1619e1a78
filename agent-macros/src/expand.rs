//! Code generation for a checked [`ToolFn`].

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::{ItemFn, spanned::Spanned};

use crate::{
    attr,
    classify::{self, Ctxt, Param, Return, ToolFn},
};

/// The whole expansion: the user's function plus either the generated tool or the errors.
pub fn tool(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut cx = Ctxt::default();
    let args = attr::parse(args, &mut cx);
    let item: ItemFn = match syn::parse2(item.clone()) {
        Ok(item) => item,
        Err(_) => {
            let error = syn::Error::new_spanned(&item, "#[tool] goes on a free `fn` or `async fn`")
                .to_compile_error();
            return quote!(#item #error);
        }
    };
    let tool = classify::classify(args, item, &mut cx);
    let errors = cx.into_errors();
    if errors.is_empty() {
        generate(&tool)
    } else {
        let item = &tool.item;
        let errors = errors.iter().map(syn::Error::to_compile_error);
        quote!(#item #(#errors)*)
    }
}

fn generate(tool: &ToolFn) -> TokenStream {
    let ToolFn {
        item,
        name,
        description,
        params,
        ret,
        krate,
        settings,
        deterministic,
        needs_approval,
        background,
    } = tool;
    let private = quote!(#krate::__private);
    let support = quote!(#private::tool);
    let krate_text = quote!(#krate).to_string().replace(' ', "");
    let serde_path = format!("{krate_text}::__private::serde");
    let schemars_path = format!("{krate_text}::__private::schemars");
    let fn_ident = &item.sig.ident;

    let mut fields = Vec::new();
    let mut idents = Vec::new();
    let mut call_args = Vec::new();
    for param in params {
        match param {
            Param::Arg { ident, ty, attrs } => {
                fields.push(quote!(#(#attrs)* #ident: #ty));
                idents.push(ident);
                call_args.push(quote!(#ident));
            }
            Param::Context { by_ref: false } => call_args.push(quote!(__agent_ctx)),
            Param::Context { by_ref: true } => call_args.push(quote!(&__agent_ctx)),
        }
    }

    let convert = match ret {
        Return::Unit => quote!(#support::output_unit(__agent_ret)),
        Return::Value(ty) => quote_spanned!(ty.span()=> #support::output(__agent_ret)),
        Return::Result { whole, ok, err } => {
            let ok_span = ok.as_ref().map_or_else(|| whole.span(), |ty| ty.span());
            let err_span = err.as_ref().map_or_else(|| whole.span(), |ty| ty.span());
            let ok_call = quote_spanned!(ok_span=> #support::output(__agent_value));
            let err_call = quote_spanned!(err_span=> #support::failure(__agent_error));
            quote! {
                match __agent_ret {
                    ::core::result::Result::Ok(__agent_value) => #ok_call,
                    ::core::result::Result::Err(__agent_error) => ::core::result::Result::Err(#err_call),
                }
            }
        }
    };

    let check_settings = settings.as_ref().map(|ty| {
        let check = quote_spanned!(ty.span()=> #support::check_settings::<#ty>(__agent_settings));
        quote! {
            fn check_settings(
                &self,
                __agent_settings: &#private::serde_json::Value,
            ) -> ::core::result::Result<(), #support::SettingsError> {
                #check
            }
        }
    });

    let body = if item.sig.asyncness.is_some() {
        quote! {
            let __agent_ret = #fn_ident(#(#call_args),*).await;
            #convert
        }
    } else {
        quote! {
            #support::run_blocking(move || {
                let __agent_ret = #fn_ident(#(#call_args),*);
                #convert
            })
            .await
        }
    };

    quote! {
        #item

        #[doc(hidden)]
        #[allow(non_camel_case_types, non_snake_case, unused_qualifications, clippy::all)]
        const _: () = {
            #[derive(#private::serde::Deserialize, #private::schemars::JsonSchema)]
            #[serde(crate = #serde_path, deny_unknown_fields)]
            #[schemars(crate = #schemars_path)]
            struct __AgentToolArgs {
                #(#fields,)*
            }

            struct __AgentTool;

            #[#private::async_trait::async_trait]
            impl #support::Tool for __AgentTool {
                fn name(&self) -> &str {
                    #name
                }

                fn description(&self) -> &str {
                    #description
                }

                fn parameters(&self, strict: bool) -> &#private::serde_json::Value {
                    static SCHEMAS: #support::SchemaCache = #support::SchemaCache::new();
                    SCHEMAS.get::<__AgentToolArgs>(strict)
                }

                async fn call(
                    &self,
                    __agent_args: #private::serde_json::Value,
                    __agent_ctx: #support::ToolContext,
                ) -> ::core::result::Result<#support::ToolOutput, #support::ToolError> {
                    let __AgentToolArgs { #(#idents,)* } = #support::deserialize_arguments::<__AgentToolArgs>(
                        #name,
                        __agent_args,
                        <Self as #support::Tool>::parameters(self, false),
                    )?;
                    #body
                }

                #check_settings

                fn deterministic(&self) -> bool {
                    #deterministic
                }

                fn needs_approval(&self) -> bool {
                    #needs_approval
                }

                fn background(&self) -> bool {
                    #background
                }
            }

            fn __agent_construct() -> ::std::sync::Arc<dyn #support::Tool> {
                ::std::sync::Arc::new(__AgentTool)
            }

            #private::inventory::submit! {
                #support::ToolRegistration::new(
                    __agent_construct,
                    ::core::concat!(::core::module_path!(), " (", ::core::file!(), ":", ::core::line!(), ")"),
                )
            }
        };
    }
}

//! `search_help_center`: ranked text search over the help-center articles.
//!
//! Scoring: the query and each article are tokenized (lowercase words, a light plural/verb
//! stemmer, stop words dropped); each query term found in the title scores 3, in the tags 2, in
//! the body 1 plus 0.25 per further occurrence (at most 3). Articles matching every term get a
//! 25 % bonus. The top 3 with a positive score are returned with a snippet: the body sentence
//! holding the most query terms.

use std::{collections::BTreeSet, sync::OnceLock};

use agent_tool::{ToolError, tool};
use serde::{Deserialize, Serialize};

link_anchor!();

/// The tool name.
pub const NAME: &str = "search_help_center";
const ARTICLES_JSON: &str = include_str!("../../../agents/data/support/help_center.json");
const TOP: usize = 3;

/// A help-center article.
#[derive(Debug, Clone, Deserialize)]
pub struct Article {
    /// Stable id, e.g. `HC-01`.
    pub id: String,
    /// The title.
    pub title: String,
    /// Keywords.
    pub tags: Vec<String>,
    /// The text.
    pub body: String,
}

/// One search result.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Hit {
    /// The article id.
    pub id: String,
    /// The article title.
    pub title: String,
    /// The most relevant sentence.
    pub snippet: String,
    /// Relevance; higher is better.
    pub score: f64,
}

/// What the model reads.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResults {
    /// The query as given.
    pub query: String,
    /// Up to 3 articles, best first; empty when nothing matched.
    pub results: Vec<Hit>,
}

fn articles() -> &'static [Article] {
    static ARTICLES: OnceLock<Vec<Article>> = OnceLock::new();
    ARTICLES.get_or_init(|| serde_json::from_str(ARTICLES_JSON).unwrap_or_default())
}

/// Searches the help center (returns, shipping, payments, cancellations, accounts, damaged
/// items, contact hours) and returns the 3 best articles with a snippet each. Answer policy
/// questions from the best article and say which one you used.
#[tool(deterministic)]
pub fn search_help_center(
    /// What the customer wants to know, in a few words, e.g. "return policy".
    query: String,
) -> Result<SearchResults, ToolError> {
    let terms: Vec<String> = tokenize(&query)
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if terms.is_empty() {
        return Err(ToolError::invalid_arguments(
            NAME,
            format!("the query `{query}` has no searchable words"),
            "a few keywords, e.g. \"return policy\" or \"late delivery\"",
        ));
    }
    Ok(SearchResults {
        query,
        results: search(articles(), &terms),
    })
}

fn search(articles: &[Article], terms: &[String]) -> Vec<Hit> {
    let mut hits: Vec<Hit> = articles
        .iter()
        .filter_map(|article| {
            let title = tokenize(&article.title);
            let tags: Vec<String> = article.tags.iter().flat_map(|t| tokenize(t)).collect();
            let body = tokenize(&article.body);
            let mut score = 0.0;
            let mut matched = 0;
            for term in terms {
                let mut found = false;
                if title.contains(term) {
                    score += 3.0;
                    found = true;
                }
                if tags.contains(term) {
                    score += 2.0;
                    found = true;
                }
                let count = body.iter().filter(|w| *w == term).count();
                if count > 0 {
                    score += 1.0 + 0.25 * (count - 1).min(3) as f64;
                    found = true;
                }
                matched += usize::from(found);
            }
            if matched == 0 {
                return None;
            }
            if matched == terms.len() {
                score *= 1.25;
            }
            Some(Hit {
                id: article.id.clone(),
                title: article.title.clone(),
                snippet: snippet(&article.body, terms),
                score: (score * 100.0).round() / 100.0,
            })
        })
        .collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    hits.truncate(TOP);
    hits
}

fn snippet(body: &str, terms: &[String]) -> String {
    let best = body
        .split_inclusive(['.', '!', '?'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
        .max_by_key(|(i, sentence)| {
            let words = tokenize(sentence);
            let hits = terms.iter().filter(|t| words.contains(t)).count();
            (hits, std::cmp::Reverse(*i))
        })
        .map_or(body, |(_, sentence)| sentence);
    if best.chars().count() > 200 {
        let cut: String = best.chars().take(197).collect();
        format!("{}...", cut.trim_end())
    } else {
        best.to_owned()
    }
}

const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how",
    "i", "if", "in", "is", "it", "me", "my", "of", "on", "or", "our", "the", "to", "was", "what",
    "when", "where", "which", "who", "why", "with", "you", "your", "there", "this", "that", "get",
    "want", "please", "about", "have", "has",
];

fn tokenize(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .map(|w| stem(&w))
        .collect()
}

/// A deliberately small stemmer: enough that "returns", "returned" and "returning" meet.
fn stem(word: &str) -> String {
    for suffix in ["ing", "ed", "es", "s"] {
        if let Some(root) = word.strip_suffix(suffix)
            && root.chars().count() >= 4
            && !(suffix == "s" && root.ends_with('s'))
        {
            return root.to_owned();
        }
    }
    word.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top(query: &str) -> Vec<String> {
        search_help_center(query.into())
            .unwrap()
            .results
            .into_iter()
            .map(|h| h.id)
            .collect()
    }

    #[test]
    fn ranks_title_matches_first() {
        assert_eq!(top("return policy")[0], "HC-01");
        assert_eq!(top("I want to return my headphones")[0], "HC-01");
        assert_eq!(top("my parcel is late")[0], "HC-03");
        assert_eq!(top("charged twice")[0], "HC-06");
        assert_eq!(top("cancel order")[0], "HC-04");
        assert_eq!(top("reset password")[0], "HC-09");
        assert!(top("return policy").len() <= TOP);
    }

    #[test]
    fn results_carry_snippets_and_scores() {
        let results = search_help_center("refund damaged item".into())
            .unwrap()
            .results;
        assert_eq!(results[0].id, "HC-07");
        assert!(results[0].score > results.last().unwrap().score || results.len() == 1);
        assert!(
            results[0].snippet.contains("damage"),
            "{}",
            results[0].snippet
        );
        assert!(results.windows(2).all(|w| w[0].score >= w[1].score));
    }

    #[test]
    fn empty_and_unmatched_queries() {
        assert!(matches!(
            search_help_center("the of and".into()),
            Err(ToolError::InvalidArguments { .. })
        ));
        assert!(
            search_help_center("xylophone".into())
                .unwrap()
                .results
                .is_empty()
        );
    }

    #[test]
    fn stemming_is_modest() {
        assert_eq!(stem("returns"), "return");
        assert_eq!(stem("returned"), "return");
        assert_eq!(stem("shipping"), "shipp");
        assert_eq!(stem("address"), "address");
        assert_eq!(stem("is"), "is");
    }
}

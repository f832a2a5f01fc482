//! Word search over message payloads (`search=` on the message and attempt lists).
//!
//! Both stores keep an index of the words of each payload, so that a search over a large
//! log reads the few messages that match instead of every payload (`payload_contains`,
//! the exact substring filter, reads them all). What a word is must be the same in the
//! index (built by the database) and in the query (split here), so it is kept simple
//! enough for both databases to agree:
//!
//! - a word is a run of ASCII letters and digits and of any non-ASCII characters; every
//!   other ASCII character (spaces, JSON punctuation, `@`, `.`, `-`, `_` …) separates
//!   words, so `ada@example.com` holds the words `ada`, `example` and `com`;
//! - ASCII letters are compared without case;
//! - a query word matches any word of the payload that starts with it, and a message
//!   matches when every query word does;
//! - only the first [`INDEXED_CHARS`] characters of a payload are indexed.
//!
//! The rule holds as written for ASCII text on both stores. Past ASCII, PostgreSQL's word
//! parser and case folding follow the database's locale: it may split at symbols such as
//! `€` or `—` and fold `É` to `é`, where SQLite keeps every non-ASCII character inside its
//! word and folds only ASCII. It also leaves out words of 2 KiB or more.

use std::fmt;

/// How much of a payload's text is indexed: the start of a large payload holds what is
/// searched for (ids, names, types), and indexing a megabyte would slow its publish.
pub const INDEXED_CHARS: usize = 64 * 1024;

/// The most words a search may have.
pub const MAX_WORDS: usize = 16;

/// The most characters a search's text may have.
pub const MAX_CHARS: usize = 256;

/// A search's words, lower-cased, each one or more characters.
#[derive(Clone, PartialEq, Eq)]
pub struct SearchWords(Vec<String>);

/// Why a search's text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchError {
    /// Empty or longer than [`MAX_CHARS`].
    Length,
    /// Only separators: nothing to search for.
    NoWords,
    /// More than [`MAX_WORDS`] words.
    TooManyWords,
}

impl fmt::Display for SearchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length => write!(f, "must be 1 to {MAX_CHARS} characters"),
            Self::NoWords => write!(f, "must contain a word (letters or digits)"),
            Self::TooManyWords => write!(f, "must have at most {MAX_WORDS} words"),
        }
    }
}

impl SearchWords {
    /// Splits a search's text into its words.
    pub fn parse(text: &str) -> Result<Self, SearchError> {
        if text.is_empty() || text.chars().count() > MAX_CHARS {
            return Err(SearchError::Length);
        }
        let words: Vec<String> = text
            .split(is_separator)
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        match words.len() {
            0 => Err(SearchError::NoWords),
            n if n > MAX_WORDS => Err(SearchError::TooManyWords),
            _ => Ok(Self(words)),
        }
    }

    /// The words, lower-cased; none contains a separator, so none needs quoting beyond
    /// what a database's query syntax puts around a word.
    pub fn words(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Debug for SearchWords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0).finish()
    }
}

/// Whether `c` separates words: every ASCII character but letters and digits.
pub fn is_separator(c: char) -> bool {
    c.is_ascii() && !c.is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_split_at_ascii_punctuation_and_lower_cased() {
        let s = SearchWords::parse("Ada@Example.com  cus_42-x").unwrap();
        assert_eq!(s.words(), ["ada", "example", "com", "cus", "42", "x"]);
    }

    #[test]
    fn non_ascii_characters_belong_to_words() {
        let s = SearchWords::parse("Zürich café").unwrap();
        assert_eq!(s.words(), ["zürich", "café"]);
    }

    #[test]
    fn bad_searches_are_refused() {
        assert_eq!(SearchWords::parse(""), Err(SearchError::Length));
        assert_eq!(
            SearchWords::parse(&"a".repeat(257)),
            Err(SearchError::Length)
        );
        assert_eq!(SearchWords::parse(" .@-"), Err(SearchError::NoWords));
        let many = vec!["w"; MAX_WORDS + 1].join(" ");
        assert_eq!(SearchWords::parse(&many), Err(SearchError::TooManyWords));
        assert!(SearchWords::parse(&vec!["w"; MAX_WORDS].join(" ")).is_ok());
    }
}

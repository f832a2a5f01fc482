//! Svix-style list pages: `limit`/`iterator`/`order` in, `{data, iterator, prevIterator,
//! done}` out. An iterator is the id of an item; a leading `-` means "the page before it".

use herald_core::store::{Cursor, Order, Page, PageRequest};
use herald_core::validation::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 250;

/// Which way a list runs.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ordering {
    Ascending,
    Descending,
}

/// Paging parameters shared by every list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Pagination {
    /// How many items to return (1 to 250, default 50).
    #[param(minimum = 1, maximum = 250)]
    pub limit: Option<u32>,
    /// The `iterator` (or `prevIterator`) of a previous page.
    pub iterator: Option<String>,
    /// The list's order; its default depends on the list.
    pub order: Option<Ordering>,
}

impl Pagination {
    /// The store's page request, or a 422 naming the bad parameter.
    pub fn to_request(&self, default_order: Order) -> ApiResult<PageRequest> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::Validation(vec![FieldError {
                loc: vec!["query".into(), "limit".into()],
                msg: format!("must be between 1 and {MAX_LIMIT}"),
                kind: "value_error.number",
            }]));
        }
        let cursor = self
            .iterator
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|it| match it.strip_prefix('-') {
                Some(before) => Cursor::Before(before.to_owned()),
                None => Cursor::After(it.to_owned()),
            });
        let order = match self.order {
            Some(Ordering::Ascending) => Order::Ascending,
            Some(Ordering::Descending) => Order::Descending,
            None => default_order,
        };
        Ok(PageRequest {
            limit,
            cursor,
            order,
        })
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    pub data: Vec<T>,
    /// Pass as `iterator` to get the next page.
    pub iterator: Option<String>,
    /// Pass as `iterator` to get the previous page.
    pub prev_iterator: Option<String>,
    /// No more items after this page.
    pub done: bool,
}

impl<T> ListResponse<T> {
    /// Builds the response from a store page; `key` gives the iterator value of an item.
    pub fn from_page<U>(page: Page<U>, key: impl Fn(&U) -> &str, convert: impl Fn(U) -> T) -> Self {
        let iterator = page.items.last().map(|u| key(u).to_owned());
        let prev_iterator = page.items.first().map(|u| format!("-{}", key(u)));
        Self {
            iterator,
            prev_iterator,
            done: page.done,
            data: page.items.into_iter().map(convert).collect(),
        }
    }
}

/// Most values a list filter may hold.
const MAX_FILTER_VALUES: usize = 100;

/// Splits `a,b` and repeated keys into one list (the Svix SDK joins with commas); a 422
/// naming `param` past [`MAX_FILTER_VALUES`].
pub fn comma_list(param: &str, values: Option<&[String]>) -> ApiResult<Option<Vec<String>>> {
    let Some(values) = values else {
        return Ok(None);
    };
    let list: Vec<String> = values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    if list.len() > MAX_FILTER_VALUES {
        return Err(ApiError::Validation(vec![FieldError {
            loc: vec!["query".into(), param.into()],
            msg: format!("at most {MAX_FILTER_VALUES} values"),
            kind: "value_error.list",
        }]));
    }
    Ok((!list.is_empty()).then_some(list))
}

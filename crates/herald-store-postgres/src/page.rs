//! Keyset pagination over time-sortable ids: a page is "the next `limit` ids after (or
//! before) the cursor", so no item is skipped or repeated while others are inserted.

use herald_core::store::{Cursor, Order, Page, PageRequest};
use sqlx::{Postgres, QueryBuilder};

/// How a page query was built, needed to read its rows back.
pub struct PageShape {
    limit: usize,
    /// Rows were fetched in the opposite order (a previous page) and must be flipped.
    reversed: bool,
}

/// Appends ` AND <cursor condition> ORDER BY … LIMIT …` to a query that already has a
/// `WHERE` clause.
pub fn push_page(
    qb: &mut QueryBuilder<'_, Postgres>,
    id_col: &str,
    page: &PageRequest,
) -> PageShape {
    use Order::*;
    let (bound, ascending, reversed) = match (&page.cursor, page.order) {
        (None, Descending) => (None, false, false),
        (None, Ascending) => (None, true, false),
        (Some(Cursor::After(id)), Descending) => (Some(("<", id)), false, false),
        (Some(Cursor::After(id)), Ascending) => (Some((">", id)), true, false),
        (Some(Cursor::Before(id)), Descending) => (Some((">", id)), true, true),
        (Some(Cursor::Before(id)), Ascending) => (Some(("<", id)), false, true),
    };
    if let Some((op, id)) = bound {
        qb.push(format!(" AND {id_col} {op} "))
            .push_bind(id.clone());
    }
    let direction = if ascending { "ASC" } else { "DESC" };
    let limit = page.limit as usize;
    qb.push(format!(" ORDER BY {id_col} {direction} LIMIT "))
        .push_bind(limit as i64 + 1);
    PageShape { limit, reversed }
}

impl PageShape {
    /// Turns the fetched rows (one more than asked, if there are more) into a page.
    pub fn finish<T>(&self, mut items: Vec<T>) -> Page<T> {
        let done = items.len() <= self.limit;
        items.truncate(self.limit);
        if self.reversed {
            items.reverse();
        }
        Page { items, done }
    }
}

//! Paginated list responses: `{data, total_count, has_more, page, items_per_page}`.

use poem_openapi::{
    Object,
    types::{Example, ParseFromJSON, ToJSON, Type},
};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, Select};

pub const DEFAULT_ITEMS_PER_PAGE: i64 = 10;

pub fn default_page() -> i64 {
    1
}

pub fn default_items_per_page() -> i64 {
    DEFAULT_ITEMS_PER_PAGE
}

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u64,
    pub items_per_page: u64,
}

impl PageRequest {
    /// From the query parameters, which the spec types as signed 64-bit integers (what every
    /// generator maps to a native type) and bounds from 1; a value below 1 never gets this far,
    /// but is read as 1 rather than trusted.
    pub fn new(page: i64, items_per_page: i64) -> Self {
        let at_least_one = |value: i64| u64::try_from(value).unwrap_or(0).max(1);
        Self {
            page: at_least_one(page),
            items_per_page: at_least_one(items_per_page),
        }
    }

    /// Zero-based index of the page, as sea-orm's paginator counts.
    pub fn index(&self) -> u64 {
        self.page - 1
    }
}

/// One page of `query` (which orders its rows), and the total count of its rows.
pub async fn fetch_page<E, C>(
    db: &C,
    query: Select<E>,
    page: PageRequest,
) -> Result<(Vec<E::Model>, u64), DbErr>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    let paginator = query.paginate(db, page.items_per_page);
    let total = paginator.num_items().await?;
    let rows = paginator.fetch_page(page.index()).await?;
    Ok((rows, total))
}

/// One page of a list, ordered by id.
#[derive(Debug, Object)]
#[oai(example)]
pub struct Paginated<T: Type + ParseFromJSON + ToJSON + Example> {
    /// The rows of this page, by id ascending.
    pub data: Vec<T>,
    /// Rows in the whole list.
    pub total_count: i64,
    /// Whether a later page has rows: `page * items_per_page < total_count`.
    pub has_more: bool,
    /// This page's number, from 1.
    pub page: i64,
    /// The page size asked for.
    pub items_per_page: i64,
}

impl<T: Type + ParseFromJSON + ToJSON + Example> Paginated<T> {
    pub fn new(data: Vec<T>, total_count: u64, request: PageRequest) -> Self {
        let signed = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        Self {
            data,
            total_count: signed(total_count),
            has_more: request.page.saturating_mul(request.items_per_page) < total_count,
            page: signed(request.page),
            items_per_page: signed(request.items_per_page),
        }
    }
}

impl<T: Type + ParseFromJSON + ToJSON + Example> Example for Paginated<T> {
    fn example() -> Self {
        Self {
            data: vec![T::example()],
            total_count: 1,
            has_more: false,
            page: 1,
            items_per_page: DEFAULT_ITEMS_PER_PAGE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Object)]
    struct Row {
        id: i64,
    }

    impl Example for Row {
        fn example() -> Self {
            Self { id: 1 }
        }
    }

    #[test]
    fn has_more_is_exact_at_the_boundary() {
        let req = |page| PageRequest::new(page, 10);
        assert!(Paginated::<Row>::new(vec![], 21, req(2)).has_more);
        assert!(!Paginated::<Row>::new(vec![], 20, req(2)).has_more);
        assert!(!Paginated::<Row>::new(vec![], 0, req(1)).has_more);
    }

    #[test]
    fn page_requests_below_one_read_as_one() {
        assert_eq!(PageRequest::new(0, -5), PageRequest::new(1, 1));
    }
}

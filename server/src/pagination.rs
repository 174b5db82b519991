//! Paginated list responses: `{data, total_count, has_more, page, items_per_page}`.

use poem_openapi::{
    Object,
    types::{ParseFromJSON, ToJSON, Type},
};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, Select};

pub const DEFAULT_ITEMS_PER_PAGE: u64 = 10;

pub fn default_page() -> u64 {
    1
}

pub fn default_items_per_page() -> u64 {
    DEFAULT_ITEMS_PER_PAGE
}

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u64,
    pub items_per_page: u64,
}

impl PageRequest {
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
pub struct Paginated<T: Type + ParseFromJSON + ToJSON> {
    pub data: Vec<T>,
    pub total_count: u64,
    pub has_more: bool,
    pub page: u64,
    pub items_per_page: u64,
}

impl<T: Type + ParseFromJSON + ToJSON> Paginated<T> {
    pub fn new(data: Vec<T>, total_count: u64, request: PageRequest) -> Self {
        Self {
            data,
            total_count,
            has_more: request.page.saturating_mul(request.items_per_page) < total_count,
            page: request.page,
            items_per_page: request.items_per_page,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_more_is_exact_at_the_boundary() {
        let req = |page| PageRequest {
            page,
            items_per_page: 10,
        };
        assert!(Paginated::<i32>::new(vec![], 21, req(2)).has_more);
        assert!(!Paginated::<i32>::new(vec![], 20, req(2)).has_more);
        assert!(!Paginated::<i32>::new(vec![], 0, req(1)).has_more);
    }
}

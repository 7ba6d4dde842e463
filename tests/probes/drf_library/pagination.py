from rest_framework.pagination import PageNumberPagination

from . import FLAWS


class BookPagination(PageNumberPagination):
    """DRF's page-number pagination as its docs show it: ?page=N&page_size=M, M capped at 100."""

    page_size = 20
    page_size_query_param = "page_size"

    @property
    def max_page_size(self):
        return None if "no_cap" in FLAWS else 100

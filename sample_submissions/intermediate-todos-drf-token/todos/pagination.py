from rest_framework.pagination import PageNumberPagination


class TodoPages(PageNumberPagination):
    """?page=2&page_size=50: 20 to-dos a page unless asked, never more than 100."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

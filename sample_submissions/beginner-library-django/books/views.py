from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import viewsets

from .models import Book
from .serializers import BookSerializer

NOT_FOUND = OpenApiResponse(description='No book with this id: `{"detail": "No Book matches the given query."}`')
INVALID = OpenApiResponse(description='Validation failed: `{"field": ["what is wrong"]}`, or `{"detail": "..."}` '
                                      "for a body that is not JSON.")
BAD_PAGE = OpenApiResponse(description='A page past the last one (or not a number): `{"detail": "Invalid page."}`')


@extend_schema_view(
    list=extend_schema(summary="List books, 20 a page", responses={200: BookSerializer, 404: BAD_PAGE}),
    create=extend_schema(summary="Add a book", responses={201: BookSerializer, 400: INVALID}),
    retrieve=extend_schema(summary="Get one book", responses={200: BookSerializer, 404: NOT_FOUND}),
    update=extend_schema(summary="Replace a book", responses={200: BookSerializer, 400: INVALID, 404: NOT_FOUND}),
    partial_update=extend_schema(summary="Change some fields of a book",
                                 responses={200: BookSerializer, 400: INVALID, 404: NOT_FOUND}),
    destroy=extend_schema(summary="Remove a book", responses={204: None, 404: NOT_FOUND}),
)
class BookViewSet(viewsets.ModelViewSet):
    """Books in the catalogue. DRF answers the errors: 400 with the field messages, 404, 405 with Allow."""

    queryset = Book.objects.all()
    serializer_class = BookSerializer

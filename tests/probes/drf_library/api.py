"""Serializer, viewset and URLs of the in-process DRF library API (the ROOT_URLCONF)."""

from django.core.validators import RegexValidator
from django.http import JsonResponse
from django.urls import include, path
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers, viewsets
from rest_framework.routers import DefaultRouter

from . import FLAWS
from .models import Book


class BookSerializer(serializers.ModelSerializer):
    isbn = serializers.CharField(required=False, allow_null=True, min_length=10, max_length=13,
                                 validators=[RegexValidator(r"^(?:\d{9}[\dX]|\d{13})$")])
    published_year = serializers.IntegerField(min_value=1450, max_value=2025)

    class Meta:
        model = Book
        fields = ["id", "title", "author", "isbn", "published_year", "available"]


# A documented example whose title holds a NUL character: Schemathesis' examples phase sends it for sure, and
# DRF's CharField refuses it (ProhibitNullCharactersValidator), as it refuses any NUL a fuzzer generates.
NUL_EXAMPLE = OpenApiExample("A title with a NUL character", request_only=True,
                             value={"title": "Nul\x00Byte", "author": "Ada", "published_year": 1999})


@extend_schema_view(create=extend_schema(examples=[NUL_EXAMPLE]))
class BookViewSet(viewsets.ModelViewSet):
    queryset = Book.objects.all()
    serializer_class = BookSerializer


router = DefaultRouter()
router.register("books", BookViewSet, basename="book")

urlpatterns = [
    path("api/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view()),
]


def not_found(request, exception=None):
    if "own_404" in FLAWS:  # a hand-written 404 in a shape of its own, beside DRF's {"detail": ...}
        return JsonResponse({"error": "not found", "path": request.path}, status=404)
    return JsonResponse({"detail": "Not found."}, status=404)


def server_error(request):
    return JsonResponse({"detail": "Internal server error."}, status=500)


handler404 = "tests.probes.drf_library.api.not_found"
handler500 = "tests.probes.drf_library.api.server_error"

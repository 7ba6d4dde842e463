from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("api/", include("books.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),  # OpenAPI 3 (YAML; ?format=json for JSON)
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

# Django's own error pages are HTML; the API answers JSON for every error (config/errors.py).
handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.not_found"
handler500 = "config.errors.server_error"

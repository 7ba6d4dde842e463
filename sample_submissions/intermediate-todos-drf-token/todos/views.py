from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import viewsets

from .models import Todo
from .serializers import TodoSerializer

DONE = OpenApiParameter("done", OpenApiTypes.BOOL, description="only finished (true) or open (false) to-dos")


@extend_schema_view(list=extend_schema(parameters=[DONE]))
class TodoViewSet(viewsets.ModelViewSet):
    """A user's own to-dos: another user's are not found (404), never forbidden (which would say they exist)."""

    serializer_class = TodoSerializer

    def get_queryset(self):
        todos = Todo.objects.filter(owner=self.request.user)
        done = self.request.query_params.get("done")
        if self.action == "list" and done in ("true", "false"):
            todos = todos.filter(done=done == "true")
        return todos

    def perform_create(self, serializer):
        serializer.save(owner=self.request.user)

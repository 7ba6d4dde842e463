from rest_framework import serializers

from .models import Todo


class TodoSerializer(serializers.ModelSerializer):
    notes = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    class Meta:
        model = Todo
        fields = ["id", "title", "notes", "done", "due_date", "created_at", "updated_at"]  # the owner is implied
        read_only_fields = ["id", "created_at", "updated_at"]

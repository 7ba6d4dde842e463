from datetime import date

from django.core.validators import RegexValidator
from rest_framework import serializers

from .fields import StrictBooleanField, StrictCharField, StrictIntegerField
from .models import Book

FIRST_PRINTED_YEAR = 1450  # Gutenberg: nothing in a library of printed books is older

isbn_format = RegexValidator(
    r"^(?:\d{9}[\dX]|\d{13})$",
    message="Enter an ISBN-10 or ISBN-13 without dashes or spaces, e.g. 9780132350884.",
)


class BookSerializer(serializers.ModelSerializer):
    title = StrictCharField(max_length=200)
    author = StrictCharField(max_length=200)
    isbn = StrictCharField(
        required=False,
        allow_null=True,
        min_length=10,
        max_length=13,
        validators=[isbn_format],
        help_text="ISBN-10 or ISBN-13, digits only (an ISBN-10 may end in X); null for books printed before 1970.",
    )
    published_year = StrictIntegerField(
        min_value=FIRST_PRINTED_YEAR,
        max_value=date.today().year,
        help_text="The year the edition was published.",
    )
    available = StrictBooleanField(default=True, help_text="False while the copy is lent out.")

    class Meta:
        model = Book
        fields = ["id", "title", "author", "isbn", "published_year", "available"]
        read_only_fields = ["id"]

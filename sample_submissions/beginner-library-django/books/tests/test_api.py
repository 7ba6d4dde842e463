from rest_framework import status
from rest_framework.test import APITestCase

from books.models import Book

DUNE = {"title": "Dune", "author": "Frank Herbert", "isbn": "9780441172719", "published_year": 1965}


class BookCrudTests(APITestCase):
    def test_create_returns_201_with_the_new_book(self):
        response = self.client.post("/api/books/", DUNE, format="json")
        self.assertEqual(response.status_code, status.HTTP_201_CREATED)
        self.assertEqual(response.json(), {"id": response.json()["id"], **DUNE, "available": True})

    def test_full_lifecycle(self):
        book_id = self.client.post("/api/books/", DUNE, format="json").json()["id"]
        url = f"/api/books/{book_id}/"

        self.assertEqual(self.client.get(url).json()["title"], "Dune")
        response = self.client.put(url, {**DUNE, "title": "Dune Messiah", "published_year": 1969}, format="json")
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        response = self.client.patch(url, {"available": False}, format="json")
        self.assertEqual(response.json()["available"], False)
        self.assertEqual(self.client.get(url).json()["title"], "Dune Messiah")

        self.assertEqual(self.client.delete(url).status_code, status.HTTP_204_NO_CONTENT)
        self.assertEqual(self.client.get(url).status_code, status.HTTP_404_NOT_FOUND)

    def test_isbn_may_be_null_for_old_books(self):
        response = self.client.post("/api/books/", {**DUNE, "isbn": None, "published_year": 1605}, format="json")
        self.assertEqual(response.status_code, status.HTTP_201_CREATED)
        self.assertIsNone(response.json()["isbn"])


class ValidationTests(APITestCase):
    def assert_rejected(self, body, field):
        response = self.client.post("/api/books/", body, format="json")
        self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST, response.content)
        self.assertIn(field, response.json())
        self.assertEqual(Book.objects.count(), 0)

    def test_missing_title(self):
        self.assert_rejected({k: v for k, v in DUNE.items() if k != "title"}, "title")

    def test_year_out_of_range(self):
        self.assert_rejected({**DUNE, "published_year": 1200}, "published_year")
        self.assert_rejected({**DUNE, "published_year": 3000}, "published_year")

    def test_isbn_format(self):
        self.assert_rejected({**DUNE, "isbn": "978-0441172719"}, "isbn")
        self.assert_rejected({**DUNE, "isbn": "12345"}, "isbn")

    def test_wrong_json_types_are_not_coerced(self):
        self.assert_rejected({**DUNE, "title": 12345}, "title")
        self.assert_rejected({**DUNE, "published_year": "1965"}, "published_year")
        self.assert_rejected({**DUNE, "available": "yes"}, "available")

    def test_malformed_json_is_a_json_400(self):
        response = self.client.generic("POST", "/api/books/", '{"title": ', content_type="application/json")
        self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST)
        self.assertIn("detail", response.json())


class ErrorAndPaginationTests(APITestCase):
    def test_unknown_book_is_a_json_404(self):
        response = self.client.get("/api/books/999/")
        self.assertEqual(response.status_code, status.HTTP_404_NOT_FOUND)
        self.assertEqual(response["Content-Type"], "application/json")

    def test_unknown_url_is_a_json_404_too(self):
        response = self.client.get("/nothing-here/")
        self.assertEqual(response.status_code, status.HTTP_404_NOT_FOUND)
        self.assertEqual(response.json(), {"detail": "Not found."})

    def test_unsupported_method_is_405(self):
        response = self.client.delete("/api/books/")
        self.assertEqual(response.status_code, status.HTTP_405_METHOD_NOT_ALLOWED)
        self.assertIn("GET", response["Allow"])

    def test_pages_are_capped_at_100(self):
        Book.objects.bulk_create(Book(**{**DUNE, "title": f"Copy {n}"}) for n in range(120))
        first = self.client.get("/api/books/").json()
        self.assertEqual((first["count"], len(first["results"])), (120, 20))
        self.assertEqual(len(self.client.get("/api/books/?page_size=1000").json()["results"]), 100)
        last = self.client.get("/api/books/?page=6").json()
        self.assertIsNone(last["next"])
        self.assertEqual(self.client.get("/api/books/?page=7").status_code, status.HTTP_404_NOT_FOUND)

    def test_openapi_schema_is_served(self):
        response = self.client.get("/api/schema/")
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertIn(b"/api/books/{id}/", response.content)

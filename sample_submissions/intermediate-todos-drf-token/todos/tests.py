from rest_framework.test import APITestCase


class TodoApiTests(APITestCase):
    def login(self, username):
        self.client.credentials()
        answer = self.client.post("/api/auth/register/", {"username": username, "password": "plum-tart-Seven7"},
                                  format="json")
        self.assertEqual(answer.status_code, 201, answer.content)
        token = self.client.post("/api/auth/login/", {"username": username, "password": "plum-tart-Seven7"},
                                 format="json").data["token"]
        self.client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    def test_a_user_keeps_a_todo_through_its_life(self):
        self.login("ada")
        made = self.client.post("/api/todos/", {"title": "write the README"}, format="json")
        self.assertEqual(made.status_code, 201)
        url = f"/api/todos/{made.data['id']}/"
        self.assertEqual(self.client.patch(url, {"done": True}, format="json").data["done"], True)
        self.assertEqual(self.client.delete(url).status_code, 204)
        self.assertEqual(self.client.get(url).status_code, 404)

    def test_another_users_todo_is_not_found(self):
        self.login("ada")
        url = f"/api/todos/{self.client.post('/api/todos/', {'title': 'mine'}, format='json').data['id']}/"
        self.login("grace")
        self.assertEqual(self.client.get(url).status_code, 404)
        self.assertEqual(self.client.patch(url, {"title": "hers"}, format="json").status_code, 404)
        self.assertEqual(self.client.delete(url).status_code, 404)

    def test_no_token_no_todos(self):
        self.assertEqual(self.client.get("/api/todos/").status_code, 401)

    def test_a_common_password_is_refused(self):
        answer = self.client.post("/api/auth/register/", {"username": "bob", "password": "password123"}, format="json")
        self.assertEqual(answer.status_code, 400)

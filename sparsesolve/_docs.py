"""Where the documentation lives, for links from estimators' HTML repr."""

#: API page of an estimator; scikit-learn's HTML repr fills in the public
#: module (``sparsesolve.clustering``) and the class name. Estimators set
#: ``_doc_link_module = "sparsesolve"`` and ``_doc_link_template = API_PAGE``
#: (see ``sklearn.utils._repr_html.base._HTMLDocumentationLinkMixin``).
API_PAGE = (
    "https://sparsesolve.readthedocs.io/en/latest/generated/"
    "{estimator_module}.{estimator_name}.html"
)

"""Entry point of the classic plugin: registers its learners with nanoml."""

from nanoml import hookimpl
from nanoml_classic.boosting import GradientBoostingClassifier, GradientBoostingRegressor
from nanoml_classic.forest import RandomForestClassifier, RandomForestRegressor
from nanoml_classic.kmeans import KMeans
from nanoml_classic.linear import ElasticNet, Lasso, LinearRegression, Ridge
from nanoml_classic.logistic import LinearSVM, LogisticRegression
from nanoml_classic.naive_bayes import GaussianNB, MultinomialNB
from nanoml_classic.neighbors import KNeighborsClassifier
from nanoml_classic.pca import PCA
from nanoml_classic.semi_supervised import LabelSpreading
from nanoml_classic.svm import SVC
from nanoml_classic.tree import DecisionTreeClassifier, DecisionTreeRegressor


@hookimpl
def register_learners(register):
    register(LinearRegression)
    register(Ridge)
    register(Lasso)
    register(ElasticNet)
    register(LogisticRegression)
    register(LinearSVM)
    register(GaussianNB)
    register(MultinomialNB)
    register(KMeans)
    register(PCA)
    register(LabelSpreading)
    register(DecisionTreeClassifier)
    register(DecisionTreeRegressor)
    register(RandomForestClassifier)
    register(RandomForestRegressor)
    register(GradientBoostingClassifier)
    register(GradientBoostingRegressor)
    register(KNeighborsClassifier)
    register(SVC)

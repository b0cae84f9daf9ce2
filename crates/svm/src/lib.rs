//! placeholder: filled by the svm work

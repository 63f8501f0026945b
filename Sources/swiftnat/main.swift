print("swiftnat")
